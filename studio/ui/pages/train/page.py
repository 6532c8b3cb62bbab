"""TrainPage: start a run in a worker process and watch it live.

Events from the worker only land in a buffer; a QTimer repaints curves, tiles and the log at
8 Hz, so a fast worker can never freeze the window. The page also follows a run that outlived a
previous GUI (``attach``), and decides nothing about closing the window: main_window asks it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

from studio.core.config import RunConfig
from studio.core.log_filter import LogFilter
from studio.core.runs import Run, RunState, RunStore
from studio.ui.config_model import ConfigModel
from studio.ui.gpu_monitor import GpuMonitor
from studio.ui.pages.spec import Work
from studio.ui.process import DEFAULT_STOP_TIMEOUT_S, WorkerProcess, split_log_tail
from studio.ui.theme import icon
from studio.ui.widgets.card import (Badge, Banner, Card, MetricTile, fmt_bytes, fmt_duration, fmt_params, muted, page_layout,
                                    scroll_page)
from studio.ui.widgets.curves import MetricsBuffer, TrainingCurves
from studio.ui.widgets.engine_choices import EngineChoicesView, read_engine_json

REDRAW_MS = 125  # 8 Hz
MESSAGE_CHARS = 360  # a failure's message in the banner; the whole text (and the traceback) is in the Log tab
HINT_CHARS = 90  # the newest log line shown beside "Starting…" while nothing else says what happens
FINAL_TONES = {RunState.COMPLETED: "ok", RunState.STOPPED: "ok", RunState.FAILED: "error", RunState.KILLED: "warn"}
PHASES = {"loading_model": "Loading the model…", "loading_data": "Preparing the data…", "training": "Training",
          "resuming": "Resuming from the checkpoint…",
          "saving": "Saving the adapter…", "exporting": "Exporting…", "evaluating": "Measuring validation loss…"}


class TrainPage(QWidget):
    sig_status_changed = Signal(str)  # for the status bar
    sig_runs_changed = Signal()  # a run folder was created, or its run ended
    sig_work_finished = Signal()  # the worker this page followed has exited

    def __init__(self, config_model: ConfigModel, gpu_monitor: Optional[GpuMonitor] = None,
                 stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S, store_root: Optional[Path] = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._store_root = store_root  # where runs go when the config names no output folder
        self.stop_timeout_s = stop_timeout_s
        self.worker: Optional[WorkerProcess] = None
        self.run: Optional[Run] = None
        self.buffer = MetricsBuffer()
        self._pending_log: list[str] = []
        self._started_at: Optional[float] = None
        self._phase = ""
        self._last_log_line = ""
        self._log_filter = LogFilter()  # bars settled, deprecation notes dropped; worker.log keeps everything

        lay = page_layout(self)
        # -- control card
        control = Card()
        row = QHBoxLayout()
        row.setSpacing(12)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.title = QLabel("Ready to train")
        self.title.setProperty("role", "card-title")
        self.subtitle = muted("", role="card-subtitle")
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        row.addLayout(titles, 1)
        self.badge = Badge()
        self.badge.hide()
        row.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        self.open_button = QPushButton("Open folder")
        self.open_button.setIcon(icon("folder"))
        self.open_button.setProperty("flat", True)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.open_button.hide()
        self.train_button = QPushButton("  Train")
        self.train_button.setObjectName("train_button")
        self.train_button.setIcon(icon("play", "#ffffff"))
        self.train_button.setProperty("primary", True)
        self.train_button.setMinimumWidth(120)
        self.train_button.clicked.connect(self._on_train_clicked)
        self.stop_button = QPushButton("  Stop")
        self.stop_button.setObjectName("stop_button")
        self.stop_button.setIcon(icon("stop", "#ffb3b3"))
        self.stop_button.setProperty("danger", True)
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        for b in (self.open_button, self.stop_button, self.train_button):
            row.addWidget(b)
        control.body.addLayout(row)
        prog = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = muted("", wrap=False, role="faint")
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.progress_label)
        control.body.addLayout(prog)
        self.progress.hide()  # until there is a run to measure
        self.progress_label.hide()
        self.banner = Banner()
        control.body.addWidget(self.banner)
        lay.addWidget(control)

        # -- tiles
        tiles = QHBoxLayout()
        tiles.setSpacing(12)
        self.tile_loss = MetricTile("Loss")
        self.tile_step = MetricTile("Step")
        self.tile_speed = MetricTile("Tokens / s")
        self.tile_eta = MetricTile("Time left")
        self.tile_gpu = MetricTile("GPU")
        for t in (self.tile_loss, self.tile_step, self.tile_speed, self.tile_eta, self.tile_gpu):
            tiles.addWidget(t, 1)
        self.tile_gpu.setMinimumWidth(230)
        lay.addLayout(tiles)

        # -- curves and log
        split = QSplitter(Qt.Orientation.Vertical)
        self.curves = TrainingCurves(horizontal=True)
        self.curves.setMinimumHeight(240)
        split.addWidget(self.curves)
        log_box = QWidget()
        log_lay = QVBoxLayout(log_box)
        log_lay.setContentsMargins(0, 6, 0, 0)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setProperty("mono", True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("The worker's log appears here.")
        # The log and what the engine chose share the bottom pane (issue #6: see every choice it made).
        self.engine_view = EngineChoicesView()
        self.details_tabs = QTabWidget()
        self.details_tabs.addTab(self.log_view, "Log")
        self.engine_tab = scroll_page(self.engine_view)
        self.details_tabs.addTab(self.engine_tab, "Engine choices")
        log_lay.addWidget(self.details_tabs)
        split.addWidget(log_box)
        split.setSizes([400, 280])  # room for the engine choices without scrolling
        lay.addWidget(split, 1)

        self._redraw_timer = QTimer(self)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self._redraw_timer.start(REDRAW_MS)
        self._gpu = gpu_monitor or GpuMonitor(parent=self)
        self._gpu.sig_snapshot_taken.connect(self._on_gpu_snapshot_taken)
        self._on_gpu_snapshot_taken(self._gpu.last)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_config_changed(config_model.config)

    # ---- public -------------------------------------------------------------------------
    def is_training(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start_run(self) -> Optional[Run]:
        """Create a run folder from the current config and start its worker; None with a message if not."""
        if self.is_training():
            return None
        config = self._model.config
        problem = self._preflight(config)
        if problem:
            self._show_ready(config)  # the refusal is about this config, not about the previous run
            self.banner.show_message(problem, "error")
            return None
        try:
            run = RunStore.for_config(config, self._store_root).create(config)
        except OSError as e:
            self.banner.show_message(f"Could not create the run folder: {e.strerror or e}. Choose another output folder "
                                     "on the Method page.", "error")
            return None
        worker = WorkerProcess(run, stop_timeout_s=self.stop_timeout_s, parent=self)
        self._follow(run, worker)
        return run if self._launch(run, worker) else None

    def resume_run(self, run: Run) -> str:
        """Continue a stopped, failed or killed run from its newest checkpoint, in place.

        Returns "" once its worker started, else why it cannot (for the page that asked)."""
        from studio.core.checkpoints import resume_problem

        if self.is_training():
            return "Another run is training; stop it or wait for it to finish, then resume this one."
        problem = resume_problem(run)
        if problem:
            return problem
        history = run.events()  # the curve so far; the resumed worker appends from the checkpoint on
        worker = WorkerProcess(run, extra_args=("--resume",), stop_timeout_s=self.stop_timeout_s, parent=self)
        self._follow(run, worker)
        self.buffer.add_all(history)
        if not self._launch(run, worker):
            return self.banner.text()
        self.banner.show_message("Resuming: the worker reloads the model and continues from the last checkpoint.",
                                 "info")
        return ""

    def _launch(self, run: Run, worker: WorkerProcess) -> bool:
        try:
            worker.start()
        except OSError as e:
            self.worker = None
            run.write_status(state=RunState.FAILED, ended=time.time(), message=f"The worker could not start: {e}")
            self._show_finished(RunState.FAILED, f"The worker could not start: {e}")
            return False
        self._phase = "Starting the worker…"
        self.sig_status_changed.emit(f"Training “{_name(run)}”")
        self.sig_runs_changed.emit()
        return True

    def attach(self, run: Run) -> None:
        """Follow a live run started by an earlier studio session."""
        if self.is_training():
            return
        worker = WorkerProcess(run, stop_timeout_s=self.stop_timeout_s, parent=self)
        self._follow(run, worker)
        self.banner.show_message("Re-attached to a run that kept training while the studio was closed.", "info")
        worker.attach()
        self.sig_status_changed.emit(f"Training “{_name(run)}” (re-attached)")

    def stop_run(self) -> None:
        if self.is_training():
            self.worker.stop()
            self.stop_button.setEnabled(False)
            secs = f"{self.stop_timeout_s:g}"
            self.banner.show_message(f"Stopping: the worker finishes its current step and saves the adapter "
                                     f"(it is killed if it has not exited within {secs} s).", "info")
            self.badge.set_state(RunState.STOPPING)

    def detach(self) -> None:
        """The studio exits and leaves the run training; nothing is killed."""
        if self.worker is not None:
            self.worker.detach()

    # ---- for the window (studio.ui.pages.spec) --------------------------------------------
    def run_action(self, action: str, run: Run) -> str:
        """"resume" a run from its checkpoint or "attach" to a live one; why not, or ""."""
        if action == "attach":
            self.attach(run)
            return ""
        return self.resume_run(run)

    def busy_work(self) -> Work:
        return Work.TRAINING if self.is_training() else Work.NONE

    def stop_work(self) -> None:
        self.stop_run()

    def detach_work(self) -> None:
        self.detach()

    # ---- starting -----------------------------------------------------------------------
    def _preflight(self, config: RunConfig) -> str:
        """Why this config cannot start, in words (the same checks `studio train` makes), or ""."""
        errors = self._model.error_lines()
        if errors:
            return "Fix the settings first — " + "; ".join(errors)
        from studio.core import gpu
        from studio.core.preflight import preflight

        problems = preflight(config, has_cuda=gpu.has_cuda_gpu(), has_bitsandbytes=gpu.has_bitsandbytes())
        if not problems:
            return ""
        if len(problems) == 1:
            return problems[0]
        return "This run cannot start yet:\n" + "\n".join(f"• {p}" for p in problems)

    def _follow(self, run: Run, worker: WorkerProcess) -> None:
        self.run, self.worker = run, worker
        self.buffer.clear()
        self._pending_log.clear()
        self.log_view.clear()
        self.engine_view.set_choices(read_engine_json(run.path))  # a re-attached run's; the plan brings fresh ones
        self._started_at = time.time()
        self._last_log_line = ""
        self._log_filter = LogFilter()
        worker.sig_event_received.connect(self._on_worker_event_received)
        worker.sig_log_received.connect(self._on_worker_log_received)
        worker.sig_finished.connect(self._on_worker_finished)
        self.title.setText(run.status().get("name") or run.id)
        self.subtitle.setText(str(run.path))
        self.badge.set_state(RunState.RUNNING)
        self.badge.show()
        self.open_button.show()
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.banner.show_message("")
        self.progress.show()
        self.progress_label.show()
        self.progress.setRange(0, 0)  # busy until the plan says how many steps
        self.progress_label.setText("Starting…")
        for t in (self.tile_loss, self.tile_step, self.tile_speed, self.tile_eta):
            t.set("—", "")

    # ---- worker signals: buffer only ----------------------------------------------------
    def _on_worker_event_received(self, event: dict) -> None:
        self.buffer.add(event)
        kind = event.get("type")
        if kind == "phase":
            self._phase = PHASES.get(event.get("phase", ""), str(event.get("phase", "")).replace("_", " ").capitalize())
            if event.get("detail"):
                self._pending_log.append(f"[{event.get('phase')}] {event['detail']}")
        elif kind == "plan":
            total = int(event.get("total_steps") or 0)
            if total:
                self.progress.setRange(0, total)
            tp, ap = event.get("trainable_params"), event.get("total_params")
            share = f" ({100 * tp / ap:.2f}%)" if tp and ap else ""
            if isinstance(event.get("choices"), dict):
                self.engine_view.set_choices(event["choices"])
            self.subtitle.setText(f"Training {fmt_params(tp)} of {fmt_params(ap)} parameters{share} on "
                                  f"{event.get('device', '?')}, {event.get('precision', '?')} · {event.get('train_rows', '?')} "
                                  f"examples · {total} steps")
        elif kind == "warning":
            self.banner.show_message(str(event.get("message", "")), "warn")
            self._pending_log.append(f"[warning] {event.get('message', '')}")
        elif kind == "error":
            hint = ""
            if event.get("kind") == "oom":
                hint = " Lower the micro-batch or max length, turn on gradient checkpointing, or pick QLoRA."
            message = _shorten(str(event.get("message") or "The worker reported an error."), MESSAGE_CHARS)
            self.banner.show_message(f"{message}{hint}", "error")
        elif kind in ("checkpoint", "artifact"):
            self._pending_log.append(f"[{kind}] {event.get('kind', '')} {event.get('path', '')}".replace("  ", " "))

    def _on_worker_log_received(self, line: str) -> None:
        shown = self._log_filter.feed(line)
        if shown is None:
            return
        self._pending_log.append(shown)
        if shown.strip():
            self._last_log_line = shown.strip()

    def _starting_text(self) -> str:
        """The phase before the first step, with the worker's newest log line when it has been quiet a while.

        A model download, or the retries of one that cannot reach the hub, would otherwise sit at
        "Starting…" for a minute with no hint (issue #13)."""
        text = self._phase or "Starting…"
        waited = time.time() - (self._started_at or time.time())
        if self._last_log_line and waited > 3:
            text += f" · {_shorten(self._last_log_line, HINT_CHARS)}"
        return text

    def _on_worker_finished(self, state: str, message: str) -> None:
        run = self.run
        self._on_redraw_timer_timeout()
        self._show_finished(state, message)
        if run is not None:
            if self.buffer.final_loss is not None and run.status().get("final_loss") is None:
                run.write_status(final_loss=self.buffer.final_loss)
            self.sig_status_changed.emit(f"Last run “{_name(run)}”: {state}")
            self.sig_runs_changed.emit()
            self.sig_work_finished.emit()

    def _show_finished(self, state: str, message: str) -> None:
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.badge.set_state(state)
        self.badge.show()
        summary, tail = split_log_tail(message)
        if state == RunState.FAILED:
            if tail and tail.splitlines()[-1] not in self.log_view.toPlainText()[-20000:]:
                self._pending_log.append(tail)  # a re-attached run's log may not have reached the view
            self._pending_log.append(f"[{state}] {summary}")
            self._on_redraw_timer_timeout()
            self.details_tabs.setCurrentWidget(self.log_view)
            self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())
            summary = _shorten(summary, MESSAGE_CHARS) + " The Log tab below has the details."
        self.banner.show_message(summary, FINAL_TONES.get(state, "info"))
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if state == RunState.COMPLETED:
            self.progress.setValue(self.progress.maximum())
        self.progress_label.setText(state.capitalize())
        self.tile_eta.set("—")  # nothing is left once the worker is gone (the detail keeps the elapsed time)

    # ---- the redraw timer ---------------------------------------------------------------
    def _on_redraw_timer_timeout(self) -> None:
        if self._pending_log:
            self.log_view.appendPlainText("\n".join(self._pending_log))
            self._pending_log.clear()
        if self.is_training() and self.buffer.last_step is None:
            self.progress_label.setText(self._starting_text())
        if not self.buffer.dirty:
            return
        self.curves.redraw(self.buffer)
        last = self.buffer.last_step
        if last is None:
            return
        step, total = int(last.get("step") or 0), int(last.get("total_steps") or 0)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
        eta = last.get("eta_s")
        epoch = last.get("epoch")
        parts = [f"Step {step}" + (f" of {total}" if total else "")]
        if isinstance(epoch, (int, float)):
            parts.append(f"epoch {epoch:.2f}")
        if self.is_training():
            parts.append(f"{fmt_duration(eta)} left" if eta is not None else self._phase)
        self.progress_label.setText(" · ".join(p for p in parts if p))
        loss = last.get("loss")
        self.tile_loss.set(f"{loss:.4f}" if isinstance(loss, (int, float)) else "—",
                           f"smoothed {self.buffer.final_loss:.4f}" if self.buffer.final_loss is not None else "")
        self.tile_step.set(f"{step:,}", f"of {total:,}" if total else "")
        tps = last.get("tokens_per_s")
        self.tile_speed.set(f"{tps:,.0f}" if isinstance(tps, (int, float)) else "—",
                            f"{int(last.get('tokens') or 0):,} tokens so far")
        elapsed = last.get("elapsed_s")
        self.tile_eta.set(fmt_duration(eta) if self.is_training() else "—",
                          f"elapsed {fmt_duration(elapsed)}" if elapsed is not None else "")

    def _on_gpu_snapshot_taken(self, snapshot) -> None:
        if not snapshot:
            self.tile_gpu.set("CPU", "No NVIDIA GPU found")
            return
        g = snapshot[0]
        util = f"{g.util_percent}% busy · " if g.util_percent is not None else ""
        peak = ""
        last = self.buffer.last_step
        if last and last.get("mem_peak_reserved"):
            peak = f" · run peak {fmt_bytes(last['mem_peak_reserved'])}"
        more = f" (+{len(snapshot) - 1} more)" if len(snapshot) > 1 else ""
        self.tile_gpu.set(f"{g.mem_used / 2**30:.1f} / {g.mem_total / 2**30:.0f} GB", f"{util}{g.name}{more}{peak}")

    def _on_config_changed(self, config: RunConfig) -> None:
        if self.is_training() or self.run is not None:
            return
        self._describe_config(config)

    def _describe_config(self, config: RunConfig) -> None:
        model = "demo model" if config.model.source == "demo" else config.model.path
        data = "demo dataset" if config.data.source == "demo" else Path(config.data.path).name or config.data.path
        self.title.setText("Ready to train")
        self.subtitle.setText(f"{type(config.method).info.title} on {model} with {data} — press Train to start run "
                              f"“{config.name}”.")

    def _show_ready(self, config: RunConfig) -> None:
        """Back to "Ready to train": the previous run's card, curves and numbers go (it stays on the Runs page)."""
        self.run = None
        self.buffer.clear()
        self._pending_log.clear()
        self.log_view.clear()
        self.curves.redraw(self.buffer)
        self.badge.hide()
        self.open_button.hide()
        self.progress.hide()
        self.progress_label.hide()
        for t in (self.tile_loss, self.tile_step, self.tile_speed, self.tile_eta):
            t.set("—", "")
        self._describe_config(config)

    def _on_train_clicked(self) -> None:
        self.start_run()

    def _on_stop_clicked(self) -> None:
        self.stop_run()

    def _on_open_clicked(self) -> None:
        if self.run is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run.path)))


def _name(run: Run) -> str:
    return run.status().get("name") or run.id


def _shorten(text: str, limit: int) -> str:
    """One paragraph of at most ``limit`` characters, cut at a word with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
