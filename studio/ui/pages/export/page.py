"""ExportPage: export a finished run as an adapter, a merged model or a GGUF file, verified; push it to the Hub.

The export runs as ``--worker export RUN_DIR --kind adapter|merged|gguf --out DIR [--from DIR]
[--quant Q] [--no-verify]`` so torch never enters the GUI; its events drive the progress (with the
size/time estimate it gives before any work) and its verdict (``verification.json``) is shown on
the VerdictCard, green or red. The form (studio.ui.pages.export.form) says before anything starts
what can be exported and why not. A finished export can be pushed to the Hugging Face Hub
(studio.ui.pages.export.push_card). Another page can ask for an export of a particular checkpoint
(the run action "export" with ``source``: the Evaluate tab's "Export this checkpoint").

The same page measures the adapter-or-merged trade-off: ``--worker genspeed RUN_DIR`` times greedy
generation with the adapter kept separate and merged, and writes RUN_DIR/genspeed.json, which is
shown whenever that run is selected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLineEdit,
                               QPlainTextEdit, QProgressBar, QPushButton, QTableView, QVBoxLayout, QWidget)

from studio.core.disk import human_bytes
from studio.core.exports import default_out, list_exports
from studio.core.log_filter import LogFilter
from studio.core.run_roots import all_runs
from studio.core.runs import Run, RunState
from studio.ui.config_model import ConfigModel
from studio.ui.pages.export.exports_table import ExportsTableModel
from studio.ui.pages.export.form import ExportForm
from studio.ui.pages.export.push_card import PushCard
from studio.ui.pages.export.verdict import VerdictCard
from studio.ui.pages.spec import Work
from studio.ui.process import WorkerProcess, split_log_tail
from studio.ui.widgets.card import Banner, Card, fmt_duration, muted, page_layout, scroll_page, section_label

EXPORTABLE_STATES = frozenset({RunState.COMPLETED, RunState.STOPPED})
GENSPEED_FILE = "genspeed.json"  # written by studio/worker/gen_speed.py into the run folder
GENSPEED_NEW_TOKENS = 128
KIND_WORDS = {"adapter": "the adapter", "merged": "the merged model", "gguf": "the GGUF file"}


def genspeed_text(result: dict) -> str:
    """The measured trade-off in one line, from genspeed.json or the worker's genspeed events."""
    adapter = (result.get("adapter") or {}).get("tokens_per_s")
    merged = (result.get("merged") or {}).get("tokens_per_s")
    if adapter is None:
        return ""
    text = f"Adapter kept separate (hot-swappable): {adapter:,.1f} tokens/s"
    if merged is not None:
        speedup = result.get("speedup") or merged / max(adapter, 1e-9)
        text += f"  ·  Merged: {merged:,.1f} tokens/s ({speedup:.2f}× faster)"
    details = [str(result[k]) for k in ("device", "dtype") if result.get(k)]
    if result.get("new_tokens"):
        details.append(f"{result['new_tokens']} new tokens, batch {result.get('batch', 1)}")
    return text + ("\n" + " · ".join(details) if details else "")


class ExportPage(QWidget):
    def __init__(self, config_model: ConfigModel, store_root=None, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._root = store_root
        self.worker: Optional[WorkerProcess] = None
        self._out_edited = False
        self._banner_run: Optional[Path] = None
        self._speed_partial: dict = {}  # genspeed events of the measurement in progress
        self._log_filter = LogFilter()  # the log card shows the worker's log without bars and deprecation notes
        self._exported_to: Optional[Path] = None
        self._estimate: Optional[dict] = None  # the running export's estimate event
        self._started = 0.0
        self._step = ""

        content = QWidget()
        lay = page_layout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))  # the cards keep their height; a short window scrolls
        lay.addWidget(self._build_export_card())
        self.verdict_card = VerdictCard()
        lay.addWidget(self.verdict_card)
        lay.addWidget(self._build_exports_card())
        self.push_card = PushCard()
        self.push_card.sig_pushed.connect(self._on_push_finished)
        lay.addWidget(self.push_card)
        lay.addWidget(self._build_speed_card())
        self.log_card = log_card = Card("Log")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setProperty("mono", True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("The export's log appears here.")
        self.log_view.setMinimumHeight(120)
        log_card.body.addWidget(self.log_view)
        lay.addWidget(log_card, 1)
        log_card.hide()  # shown once an export prints something
        lay.addStretch(0)
        self._clock = QTimer(self)  # the elapsed time against the estimate, while an export runs
        self._clock.timeout.connect(self._show_progress_text)
        self._account_checked = False
        self.refresh()

    def _build_export_card(self) -> Card:
        card = Card("Export a trained run", "An adapter is small and loads on top of the base model; a merged model "
                                            "is a standalone copy with the training folded into its weights; GGUF "
                                            "is that copy as one file for llama.cpp and Ollama.")
        self.run_combo = QComboBox()
        self.run_combo.setObjectName("export_run_combo")
        self.run_combo.setPlaceholderText("No finished run yet")
        self.run_combo.currentIndexChanged.connect(self._on_run_combo_changed)
        self.form = ExportForm(self.run_combo)
        self.form.sig_changed.connect(self._on_form_changed)
        card.body.addWidget(self.form)
        card.body.addWidget(section_label("Into folder"))
        row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.setObjectName("export_out_edit")
        self.out_edit.textEdited.connect(self._on_out_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        card.body.addLayout(row)
        actions = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.progress_label = muted("", wrap=False, role="faint")
        self.progress_label.setObjectName("export_progress_label")
        self.progress_label.hide()
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("export_button")
        self.export_button.setProperty("primary", True)
        self.export_button.setMinimumWidth(120)
        self.export_button.clicked.connect(self._on_export_clicked)
        actions.addWidget(self.progress, 1)
        actions.addWidget(self.progress_label, 1)
        actions.addStretch(0)
        actions.addWidget(self.export_button)
        card.body.addLayout(actions)
        self.banner = Banner()
        self.banner.setObjectName("export_banner")
        card.body.addWidget(self.banner)
        return card

    def _build_exports_card(self) -> Card:
        self.exports_card = card = Card("Exports of this run", "Select one to see its verification and push it.")
        self.exports_model = ExportsTableModel(self)
        self.exports_table = QTableView()
        self.exports_table.setObjectName("exports_table")
        self.exports_table.setModel(self.exports_model)
        self.exports_table.verticalHeader().hide()
        self.exports_table.verticalHeader().setDefaultSectionSize(28)
        self.exports_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.exports_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.exports_table.setShowGrid(False)
        header = self.exports_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.exports_table.selectionModel().currentRowChanged.connect(self._on_export_row_changed)
        card.body.addWidget(self.exports_table)
        return card

    def _build_speed_card(self) -> Card:
        card = Card("Adapter or merged: generation speed",
                    "A separate adapter can be swapped at run time (several over one base model) but every "
                    "token pays its extra matmuls; merged runs at base-model speed. Measured on this device.")
        row = QHBoxLayout()
        self.speed_result = muted("", role="muted")
        self.speed_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.speed_button = QPushButton("Measure generation speed")
        self.speed_button.setObjectName("speed_button")
        self.speed_button.clicked.connect(self._on_speed_clicked)
        row.addWidget(self.speed_result, 1)
        row.addWidget(self.speed_button, 0, Qt.AlignmentFlag.AlignTop)
        card.body.addLayout(row)
        self.speed_banner = Banner()
        card.body.addWidget(self.speed_banner)
        return card

    # ---- runs ---------------------------------------------------------------------------
    def refresh(self) -> None:
        current = self.selected_run()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in all_runs(self._root):
            status = run.status()
            if status.get("state") in EXPORTABLE_STATES and run.adapter_dir.exists():
                self.run_combo.addItem(f"{status.get('name') or run.id}  ·  {status.get('state')}  ·  {run.id}", run)
        if self.run_combo.count() and self.run_combo.currentIndex() < 0:
            self.run_combo.setCurrentIndex(0)  # with a placeholder text Qt selects nothing by itself
        self.run_combo.blockSignals(False)
        if current is not None:
            self.select_run(current)
        self._on_run_combo_changed()

    # ---- for the window (studio.ui.pages.spec) --------------------------------------------
    def run_action(self, action: str, run: Run, source: Optional[str] = None, label: str = "") -> str:
        """"export": show this run, ready to export (``source``: these weights preselected, e.g. a checkpoint)."""
        self.refresh()
        if not self.select_run(run):
            return "it has not finished (or has no trained weights saved), so there is nothing to export yet."
        if source is not None and not self.form.select_source(source):
            return f"its weights {label or source} are no longer on disk."
        return ""

    def busy_work(self) -> Work:
        busy = (self.worker is not None and self.worker.is_running()) or self.push_card.busy()
        return Work.JOB if busy else Work.NONE

    def kill_work(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        self.push_card.kill()

    def select_run(self, run: Run) -> bool:
        for i in range(self.run_combo.count()):
            if self.run_combo.itemData(i).path == run.path:
                self.run_combo.setCurrentIndex(i)
                return True
        return False

    def selected_run(self) -> Optional[Run]:
        return self.run_combo.currentData() if self.run_combo.count() else None

    def _busy(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def _on_run_combo_changed(self, *_args) -> None:
        run = self.selected_run()
        busy = self._busy()
        self.speed_button.setEnabled(False)
        if run is None:
            self.form.set_run(None)
            self.banner.show_message("No finished runs yet. A run that completed or was stopped (with its adapter "
                                     "saved) can be exported here.", "info")
            self.export_button.setEnabled(False)
            self.exports_card.hide()
            self.verdict_card.show_export(None)
            self.push_card.set_export(None, None)
            self.push_card.hide()
            self.speed_result.setText("")
            self.speed_banner.show_message("")
            self._banner_run = None
            return
        if not busy and run.path != self._banner_run:
            self.banner.show_message("")  # an outcome stays until another run is chosen
            self.speed_banner.show_message("")
        new_run = run.path != self._banner_run
        self._banner_run = run.path
        if new_run or self.form.run is None:
            error = self.form.set_run(run)
            if error:
                self.banner.show_message(error, "error")
                self.export_button.setEnabled(False)
                return
        self._show_exports(run)
        info = self.form._info
        self._show_speed(run, info)
        self.speed_button.setEnabled(info.mergeable and not busy)
        self._update_export_button()
        self._suggest_out()

    def _show_exports(self, run: Run, select: Optional[Path] = None) -> None:
        exports = list_exports(run)
        current = self._selected_export()
        self.exports_model.set_exports(exports)
        self.exports_card.setVisible(bool(exports))
        self.push_card.setVisible(True)
        rows = min(max(len(exports), 1), 6)
        self.exports_table.setFixedHeight(self.exports_table.horizontalHeader().sizeHint().height() + 28 * rows + 4)
        target = select or (current.folder if current is not None else None)
        row = self.exports_model.row_of(target) if target is not None else -1
        if exports:
            self.exports_table.selectRow(row if row >= 0 else 0)
            self._on_export_row_changed()
        else:
            self.verdict_card.show_export(None)
            self.push_card.set_export(run, None)

    def _selected_export(self):
        index = self.exports_table.selectionModel().currentIndex() if self.exports_model.rowCount() else None
        return self.exports_model.export(index.row()) if index is not None and index.isValid() else None

    def _on_export_row_changed(self, *_args) -> None:
        info = self._selected_export()
        self.verdict_card.show_export(info)
        self.push_card.set_export(self.selected_run(), info)

    def _show_speed(self, run: Run, info) -> None:
        if not info.mergeable:
            self.speed_result.setText(f"{info.title} cannot be merged, so there is no trade-off to measure: "
                                      f"{info.merge_note}".strip())
            return
        try:
            result = json.loads((run.path / GENSPEED_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            result = None
        except (OSError, ValueError) as e:
            result = None
            self.speed_banner.show_message(f"{GENSPEED_FILE} of this run could not be read ({e}); measure again.",
                                           "warn")
        text = genspeed_text(result) if isinstance(result, dict) else ""
        self.speed_result.setText(text or "Not measured yet for this run: one measurement loads the base model "
                                          "once and times generation with the adapter separate, then merged.")

    def _suggest_out(self) -> None:
        """exports/<kind> (gguf-<type>, -step-N from a checkpoint), numbered so it never names an earlier export."""
        run = self.selected_run()
        if run is None or self._out_edited:
            return
        self.out_edit.setText(str(default_out(run, self.form.kind(), self.form.quant(), self.form.source())))

    def _on_form_changed(self) -> None:
        self._suggest_out()
        self._update_export_button()

    def _update_export_button(self) -> None:
        problem = self.form.problem()
        self.export_button.setEnabled(not problem and not self._busy())
        self.export_button.setToolTip(problem)

    def _on_out_edited(self, _text: str) -> None:
        self._out_edited = True

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)
            self._out_edited = True

    # ---- exporting ----------------------------------------------------------------------
    def start_export(self) -> bool:
        """Start the export the form describes; False (with the reason shown) when it cannot start."""
        run = self.selected_run()
        out = self.out_edit.text().strip()
        if run is None or self._busy():
            return False
        problem = self.form.problem()
        if problem:
            self.banner.show_message(problem, "warn")
            return False
        if not out:
            self.banner.show_message("Choose a folder to export into.", "warn")
            return False
        out_path = Path(out).expanduser()
        if out_path.exists() and any(out_path.iterdir()):
            self.banner.show_message(f"{out_path} is not empty; choose an empty or new folder so nothing is "
                                     "overwritten.", "warn")
            return False
        kind, source = self.form.kind(), self.form.source()
        args = ["--kind", kind, "--out", str(out_path)]
        if source is not None and source.label != "final":
            args += ["--from", str(source.path)]
        if kind == "gguf":
            args += ["--quant", self.form.quant()]
        if not self.form.verify():
            args.append("--no-verify")
        self._estimate = None
        self._step = "Starting"
        self.banner.show_message("")
        self.verdict_card.show_export(None)
        self._launch(run, "export", tuple(args), self._on_worker_event_received,
                     lambda state, message, r=run, p=out_path, k=kind:
                     self._on_worker_finished(r, p, state, message, k))
        return True

    def _on_export_clicked(self) -> None:
        self.start_export()

    def _launch(self, run: Run, job: str, args: tuple[str, ...], on_event: Callable[[dict], None],
                on_finished: Callable[[str, str], None]) -> None:
        """Start one worker job for ``run`` (one at a time on this page); its log goes to the log card."""
        worker = WorkerProcess(run, kind=job, extra_args=args, parent=self)
        worker.sig_event_received.connect(on_event)
        worker.sig_log_received.connect(self._on_worker_log_received)
        worker.sig_finished.connect(on_finished)
        self.worker = worker
        self._log_filter = LogFilter()
        self.log_view.clear()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.export_button.setEnabled(False)
        self.speed_button.setEnabled(False)
        if job == "export":
            self._started = time.monotonic()
            self.progress_label.show()
            self._show_progress_text()
            self._clock.start(1000)
        try:
            worker.start()
        except OSError as e:
            on_finished(RunState.FAILED, f"The worker could not start: {e}")

    def _show_progress_text(self) -> None:
        elapsed = time.monotonic() - self._started
        text = f"{self._step} · {fmt_duration(elapsed)}"
        if self._estimate:
            text += f" of about {fmt_duration(self._estimate['seconds'])}"
        self.progress_label.setText(text)

    # ---- generation speed ---------------------------------------------------------------
    def _on_speed_clicked(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        self._speed_partial = {}
        self.speed_banner.show_message(f"Measuring generation speed of {run.id}: loading the base model…", "info")
        self._launch(run, "genspeed", ("--new-tokens", str(GENSPEED_NEW_TOKENS)), self._on_speed_event_received,
                     lambda state, message, r=run: self._on_speed_finished(r, state, message))

    def _on_speed_event_received(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "genspeed" and event.get("mode") in ("adapter", "merged"):
            self._speed_partial[event["mode"]] = event
            self._speed_partial.update({k: event.get(k) for k in ("device", "dtype", "new_tokens", "batch")})
            self.speed_result.setText(genspeed_text(self._speed_partial))
        elif kind == "phase":
            self.speed_banner.show_message(f"Measuring: {event.get('detail') or event.get('phase', '')}…", "info")
        elif kind == "warning":
            self.log_view.appendPlainText(f"[warning] {event.get('message', '')}")

    def _on_speed_finished(self, run: Run, state: str, message: str) -> None:
        self.worker = None
        self.progress.hide()
        if state == RunState.COMPLETED:
            self.speed_banner.show_message("")
        else:
            summary, _tail = split_log_tail(message or "The measurement failed.")
            self.speed_banner.show_message(f"{summary} The log below has the details.", "error")
            self.log_card.show()
        self._on_run_combo_changed()  # re-enables the buttons and shows genspeed.json
        if state != RunState.COMPLETED and self._speed_partial:
            self.speed_result.setText(genspeed_text(self._speed_partial))  # what was measured before the failure

    def _on_worker_log_received(self, line: str) -> None:
        shown = self._log_filter.feed(line)
        if shown is None:
            return
        self.log_card.show()
        self.log_view.appendPlainText(shown)

    def _on_worker_event_received(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress" and event.get("total"):
            self.progress.setRange(0, int(event["total"]))
            self.progress.setValue(int(event.get("current") or 0))
            if event.get("label"):
                self._step = str(event["label"]).capitalize()
                self._show_progress_text()
        elif kind == "estimate":
            self._estimate = event
            self.banner.show_message(f"Estimate: {event.get('detail') or human_bytes(event.get('size_bytes', 0))}",
                                     "info")
        elif kind == "phase":
            self._step = str(event.get("detail") or event.get("phase", "")).capitalize()
            self._show_progress_text()
        elif kind == "verification":
            self._step = "Verified" if event.get("passed") else "Verification FAILED"
        elif kind == "warning":
            self.log_view.appendPlainText(f"[warning] {event.get('message', '')}")

    def _on_worker_finished(self, run: Run, out: Path, state: str, message: str, kind: str = "adapter") -> None:
        self.worker = None
        self._clock.stop()
        self.progress.hide()
        self.progress_label.hide()
        self.speed_button.setEnabled(bool(self.form._info and self.form._info.mergeable))
        self._show_exports(run, select=out)
        exported = self.exports_model.row_of(out) >= 0
        if state == RunState.COMPLETED:
            took = fmt_duration(time.monotonic() - self._started)
            self.banner.show_message(f"Exported {KIND_WORDS.get(kind, kind)} to {out} in {took}.", "ok")
            self._exported_to = out
            self._out_edited = False
        elif exported:  # the file was written and kept, but its check failed: the red card says what differed
            self.banner.show_message(f"Exported {KIND_WORDS.get(kind, kind)} to {out}, but its VERIFICATION FAILED: "
                                     "see below. Do not use it as it is.", "error")
            self._out_edited = False
        else:
            summary, _tail = split_log_tail(message or "The export failed.")
            self.banner.show_message(f"{summary} The log below has the details.", "error")
            self.log_card.show()
        self._suggest_out()
        self._update_export_button()

    def _on_push_finished(self) -> None:
        run = self.selected_run()
        if run is not None:
            self._show_exports(run)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.worker is None and not self.push_card.busy():
            self.refresh()
        if not self._account_checked:
            self._account_checked = True
            self.push_card.check_account()
