"""ComparePage: pick methods, press Compare, watch them train one after another, read the table.

Every method becomes an ordinary run (studio.core.compare builds the configs from the current
RunConfig and tags the runs with a comparison id), started through WorkerProcess one at a time.
Events land in per-run buffers; a QTimer rebuilds the table and the overlaid curves at 4 Hz.
Earlier comparisons in the run store can be shown again from the combo box.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QSpinBox, QTableView, QWidget)

from studio.core.compare import (MethodResult, comparison_configs, comparison_ids, comparison_runs,
                                 create_comparison, new_comparison_id, summarise_events)
from studio.core.methods import METHOD_CLASSES
from studio.core.run_roots import all_runs
from studio.core.runs import Run, RunState, RunStore
from studio.ui.config_model import ConfigModel
from studio.ui.pages.compare.curves import OverlayCurves, color_for
from studio.ui.pages.compare.table_model import ComparisonTableModel
from studio.ui.pages.spec import Work
from studio.ui.process import DEFAULT_STOP_TIMEOUT_S, WorkerProcess
from studio.ui.theme import icon
from studio.ui.widgets.card import Banner, Card, fmt_params, muted, page_layout

if TYPE_CHECKING:
    from studio.core.config import RunConfig
    from studio.core.models import ModelFacts

REDRAW_MS = 250
DEFAULT_PICK = ("lora", "dora", "ia3", "prompt_tuning")
# Picker columns: the LoRA family splits by whether the base is quantized (those need a GPU).
COLUMNS = ("LoRA family", "Quantized base", "Tiny adapters", "Soft prompts", "Full-parameter")


def _column(cls: Any) -> str:
    return "Quantized base" if cls.needs_bitsandbytes else cls.info.family


def _name(cls: Any) -> str:
    return cls.model_fields["name"].default


class ComparePage(QWidget):
    sig_comparison_finished = Signal(str, str)  # comparison id, RunState: completed, stopped or failed
    sig_status_changed = Signal(str)  # for the status bar
    sig_runs_changed = Signal()  # the comparison's runs were created, or it ended
    sig_work_finished = Signal()  # the comparison ended

    def __init__(self, config_model: ConfigModel, store_root: Optional[Path] = None,
                 stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S, has_cuda: Optional[bool] = None,
                 has_bitsandbytes: Optional[bool] = None, preflight: Optional[Callable[[Any], list[str]]] = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        from studio.core import gpu

        self._model = config_model
        self._store_root = store_root
        self.stop_timeout_s = stop_timeout_s
        self._has_cuda = gpu.has_cuda_gpu() if has_cuda is None else has_cuda
        self._has_bnb = gpu.has_bitsandbytes() if has_bitsandbytes is None else has_bitsandbytes
        self._preflight = preflight
        self._facts: Optional[ModelFacts] = None
        self._facts_key: Any = None
        self.comparison_id: Optional[str] = None
        self.runs: list[Run] = []
        self._events: dict[str, list[dict]] = {}
        self._current = -1
        self._stopping = False
        self._dirty = False
        self.worker: Optional[WorkerProcess] = None
        self.table_model = ComparisonTableModel(self)

        lay = page_layout(self)
        lay.addWidget(self._build_picker())
        lay.addWidget(self._build_results(), 1)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._on_redraw_timer_timeout)
        self._timer.start(REDRAW_MS)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_config_changed(config_model.config)
        self.refresh_history()
        latest = self.history_combo.itemData(0)
        if latest:  # open on the last comparison: its table is what the user came back for
            self.show_comparison(latest)

    # ---- layout -------------------------------------------------------------------------
    def _build_picker(self) -> QWidget:
        card = Card("Compare methods", "Same model, data and step budget for each; they train one after another, "
                    "each as a normal run.")
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(4)
        self.method_boxes: dict[str, QCheckBox] = {}
        self.param_labels: dict[str, QLabel] = {}
        for col, family in enumerate(COLUMNS):
            head = QLabel(family.upper())
            head.setProperty("role", "section")
            grid.addWidget(head, 0, col * 2, 1, 2)
            members = [c for c in METHOD_CLASSES if _column(c) == family]
            for row, cls in enumerate(members, start=1):
                box = QCheckBox(cls.info.title.split(" (")[0])
                box.setObjectName(f"compare_{_name(cls)}")
                box.setChecked(_name(cls) in DEFAULT_PICK)
                box.toggled.connect(self._on_method_toggled)
                count = muted("", wrap=False, role="faint")
                grid.addWidget(box, row, col * 2)
                grid.addWidget(count, row, col * 2 + 1)
                self.method_boxes[_name(cls)] = box
                self.param_labels[_name(cls)] = count
        for col in range(len(COLUMNS)):
            grid.setColumnStretch(col * 2 + 1, 1)
        card.body.addLayout(grid)

        row = QHBoxLayout()
        row.setSpacing(10)
        row.addWidget(QLabel("Steps per method"))
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1_000_000)
        self.steps_spin.setValue(100)
        self.steps_spin.setToolTip("Every method trains exactly this many optimizer steps.")
        row.addWidget(self.steps_spin)
        self.same_lr_box = QCheckBox("Same learning rate for every method")
        self.same_lr_box.setToolTip("Off: your learning rate, scaled for each method by how its typical rate "
                                    "compares with your method's (IA3 and prompt tuning need far higher rates "
                                    "than LoRA, full fine-tuning far lower). On: your rate for all.")
        row.addWidget(self.same_lr_box)
        row.addStretch(1)
        self.summary_label = muted("", wrap=False, role="faint")
        row.addWidget(self.summary_label)
        self.stop_button = QPushButton("  Stop")
        self.stop_button.setObjectName("compare_stop_button")
        self.stop_button.setIcon(icon("stop", "#ffb3b3"))
        self.stop_button.setProperty("danger", True)
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.compare_button = QPushButton("  Compare")
        self.compare_button.setObjectName("compare_button")
        self.compare_button.setIcon(icon("play", "#ffffff"))
        self.compare_button.setProperty("primary", True)
        self.compare_button.setMinimumWidth(130)
        self.compare_button.clicked.connect(self._on_compare_clicked)
        row.addWidget(self.stop_button)
        row.addWidget(self.compare_button)
        card.body.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        card.body.addWidget(self.progress)
        self.banner = Banner()
        card.body.addWidget(self.banner)
        return card

    def _build_results(self) -> QWidget:
        card = Card("Results")
        self.progress_label = muted("", wrap=False, role="faint")
        card.add_header_widget(self.progress_label)
        self.history_combo = QComboBox()
        self.history_combo.setObjectName("compare_history")
        self.history_combo.setMinimumWidth(260)
        self.history_combo.setToolTip("Show an earlier comparison from the run store.")
        self.history_combo.activated.connect(self._on_history_activated)
        card.add_header_widget(self.history_combo)
        self.table = QTableView()
        self.table.setObjectName("compare_table")
        self.table.setModel(self.table_model)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setSelectionMode(QTableView.SelectionMode.NoSelection)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        card.body.addWidget(self.table)
        self.curves = OverlayCurves()
        self.curves.setMinimumHeight(150)
        card.body.addWidget(self.curves, 1)
        self._fit_table()
        return card

    # ---- public -------------------------------------------------------------------------
    def set_model_facts(self, facts: Optional[ModelFacts]) -> None:
        """The chosen model's facts (from the Model page): availability and parameter counts."""
        self._facts = facts
        self._facts_key = ("given", id(facts))
        self._update_methods()

    def selected_methods(self) -> list[str]:
        return [name for name, box in self.method_boxes.items() if box.isChecked() and box.isEnabled()]

    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start_comparison(self) -> Optional[str]:
        """Create the runs and start the first; None (with the reason in the banner) if it cannot start."""
        if self.is_running():
            return None
        methods = self.selected_methods()
        if not methods:
            self.banner.show_message("Tick at least one method to compare.", "warn")
            return None
        configs = comparison_configs(self._model.config, methods, steps=self.steps_spin.value(),
                                     same_lr=self.same_lr_box.isChecked(), facts=self._facts)
        problems = self._check(configs)
        if problems:
            self.banner.show_message("Cannot start the comparison:\n" + "\n".join(f"• {p}" for p in problems), "error")
            return None
        store = RunStore.for_config(self._model.config, self._store_root)
        self.comparison_id = new_comparison_id()
        self.runs = create_comparison(store, configs, self.comparison_id)
        self._events = {r.id: [] for r in self.runs}
        self._stopping = False
        self._assign_colors()
        self.curves.clear()
        self.banner.show_message("")
        self.refresh_history(select=self.comparison_id)
        self.sig_status_changed.emit(f"Comparing methods ({self.comparison_id})")
        self.sig_runs_changed.emit()
        self._launch(0)
        return self.comparison_id

    def stop(self) -> None:
        if not self.is_running():
            return
        self._stopping = True
        self.stop_button.setEnabled(False)
        self.progress_label.setText("Stopping after the current step…")
        self.worker.stop()

    # ---- for the window (studio.ui.pages.spec) --------------------------------------------
    def busy_work(self) -> Work:
        return Work.TRAINING if self.is_running() else Work.NONE

    def stop_work(self) -> None:
        self.stop()

    def detach_work(self) -> None:
        """The studio exits: the current method's run carries on; the queue ends with the studio."""
        if self.worker is not None:
            self.worker.detach()

    def show_comparison(self, comparison_id: str) -> None:
        """Load a finished (or earlier) comparison from the run store into the table and curves."""
        if self.is_running():
            return
        self.comparison_id = comparison_id
        self.runs = comparison_runs(all_runs(self._store_root), comparison_id)
        self._events = {r.id: r.events() for r in self.runs}
        self._current = -1
        self._pick_like(self.runs)
        self._assign_colors()
        self.curves.clear()
        self._dirty = True
        self._on_redraw_timer_timeout()
        self.progress_label.setText(_describe(self.runs))

    def _pick_like(self, runs: list[Run]) -> None:
        """Tick the shown comparison's methods and steps, so Compare re-runs it (after any edits)."""
        names = {r.status().get("comparison_method") for r in runs}
        if not names & set(self.method_boxes):
            return
        for name, box in self.method_boxes.items():
            box.setChecked(name in names and box.isEnabled())
        try:
            steps = runs[0].config().training.max_steps
        except Exception:  # a damaged config: keep the current steps
            steps = 0
        if steps:
            self.steps_spin.setValue(steps)

    def refresh_history(self, select: Optional[str] = None) -> None:
        ids = comparison_ids(all_runs(self._store_root))
        self.history_combo.blockSignals(True)
        self.history_combo.clear()
        if not ids:
            self.history_combo.addItem("No comparisons yet", None)
        for cid in ids:
            self.history_combo.addItem(cid.replace("cmp-", "Comparison "), cid)
        if select:
            i = self.history_combo.findData(select)
            if i >= 0:
                self.history_combo.setCurrentIndex(i)
        self.history_combo.setEnabled(bool(ids))
        self.history_combo.blockSignals(False)

    def rows(self) -> list[MethodResult]:
        return self.table_model.rows

    # ---- running ------------------------------------------------------------------------
    def _check(self, configs: list[Any]) -> list[str]:
        if self._preflight is None:
            from studio.core.preflight import preflight

            check = lambda c: preflight(c, has_cuda=self._has_cuda, has_bitsandbytes=self._has_bnb)  # noqa: E731
        else:
            check = self._preflight
        found = [(c, check(c)) for c in configs]
        shared = [p for p in found[0][1] if all(p in ps for _, ps in found)] if found else []  # the model, the data
        problems: list[str] = list(shared)
        for c, ps in found:
            for p in ps:
                line = f"{c.method.info.title}: {p}"
                if p not in shared and line not in problems:
                    problems.append(line)
        return problems

    def _launch(self, index: int) -> None:
        self._current = index
        run = self.runs[index]
        worker = WorkerProcess(run, "train", stop_timeout_s=self.stop_timeout_s, parent=self)
        worker.sig_event_received.connect(lambda ev, rid=run.id: self._on_worker_event(rid, ev))
        worker.sig_finished.connect(self._on_worker_finished)
        self.worker = worker
        try:
            worker.start()
        except OSError as e:
            self.banner.show_message(f"Cannot start the worker: {e}", "error")
            self.worker = None
            self._finish(RunState.FAILED)
            return
        self.compare_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress.show()
        self._dirty = True

    def _on_worker_event(self, run_id: str, event: dict) -> None:
        self._events.setdefault(run_id, []).append(event)
        self._dirty = True

    def _on_worker_finished(self, state: str, message: str) -> None:
        self.worker = None
        self._dirty = True
        if state != RunState.COMPLETED and not self._stopping:
            title = self.runs[self._current].config().method.info.title
            self.banner.show_message(f"{title} {state}: {message.splitlines()[0] if message else ''} "
                                     "The comparison goes on with the next method.", "warn")
        if self._stopping or self._current + 1 >= len(self.runs):
            self._finish(RunState.STOPPED if self._stopping else RunState.COMPLETED)
        else:
            self._launch(self._current + 1)

    def _finish(self, outcome: str) -> None:
        # Runs that never started hold only a config; leaving them would clutter the run history.
        for run in self.runs[self._current + 1:]:
            if run.state == RunState.CREATED and not run.events():
                shutil.rmtree(run.path, ignore_errors=True)
        self.runs = [r for r in self.runs if r.path.exists()]
        self._current = -1
        self.compare_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.hide()
        self._on_redraw_timer_timeout()
        if outcome == RunState.STOPPED:
            self.progress_label.setText("Stopped; the methods not yet run were dropped.")
        else:
            self.progress_label.setText("Done: " + _describe(self.runs))
        self.sig_comparison_finished.emit(self.comparison_id or "", outcome)
        self.sig_status_changed.emit(f"Comparison {self.comparison_id or ''}: {outcome}")
        self.sig_runs_changed.emit()
        self.sig_work_finished.emit()

    # ---- drawing ------------------------------------------------------------------------
    def _assign_colors(self) -> None:
        self.table_model.colors = {r.status().get("comparison_method", ""): color_for(i) for i, r in enumerate(self.runs)}

    def _on_redraw_timer_timeout(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        rows = []
        for i, run in enumerate(self.runs):
            status = run.status()
            method = status.get("comparison_method", "")
            events = self._events.get(run.id, [])
            if i == self._current:
                state = RunState.RUNNING
            elif self._current >= 0 and i > self._current:
                state = "queued"
            else:
                state = status.get("state", RunState.CREATED)
            lr = _lr_of(run)
            rows.append(summarise_events(events, run_id=run.id, method=method, state=state, learning_rate=lr)
                        if events or state != "queued" else
                        MethodResult(run_id=run.id, method=method, title=_title(method), state="queued", learning_rate=lr))
            if state == RunState.RUNNING:
                rows[-1].state = RunState.RUNNING
        self.table_model.set_rows(rows)
        self._fit_table()
        self.curves.redraw(rows, self.table_model.colors)
        self._update_progress(rows)

    def _update_progress(self, rows: list[MethodResult]) -> None:
        if self._current < 0 or not rows:
            return
        current = rows[self._current]
        total_steps = self.steps_spin.value()
        frac = (self._current + min(current.steps / max(total_steps, 1), 1.0)) / len(rows)
        self.progress.setValue(int(frac * 1000))
        step = f" — step {current.steps}/{total_steps}" if current.steps else " — loading…"
        self.progress_label.setText(f"{self._current + 1}/{len(rows)}: {current.title}{step}")

    def _fit_table(self) -> None:
        """Tall enough for every row (up to ten): the table is the point of the page, not a scroll box."""
        shown = max(3, min(self.table_model.rowCount(), 10))
        rows_h = self.table.verticalHeader().defaultSectionSize() * shown
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows_h + 6)

    # ---- reactions ----------------------------------------------------------------------
    def _on_config_changed(self, config: RunConfig) -> None:
        if config.training.max_steps and not self.is_running():
            self.steps_spin.setValue(config.training.max_steps)
        key = (config.model.source, config.model.path)
        if self._facts_key != key and (self._facts_key is None or self._facts_key[0] != "given"):
            self._facts_key = key
            self._facts = _facts_for(config)
        self._update_methods()

    def _update_methods(self) -> None:
        from studio.core.methods.params import trainable_params

        for cls in METHOD_CLASSES:
            name = _name(cls)
            box, label = self.method_boxes[name], self.param_labels[name]
            avail = cls.availability(has_cuda=self._has_cuda, has_bitsandbytes=self._has_bnb, facts=self._facts)
            box.setEnabled(avail.ok)
            tip = f"{cls.info.summary}\n\nCosts: {cls.info.costs}"
            box.setToolTip(tip if avail.ok else f"Unavailable: {avail.reason}\n\n{tip}")
            count = ""
            if self._facts is not None and avail.ok:
                try:
                    count = fmt_params(trainable_params(self._model.config.method if
                                                        self._model.config.method.name == name else cls(), self._facts))
                except (KeyError, ValueError, AttributeError, ZeroDivisionError):
                    count = ""
            label.setText(count if avail.ok else "unavailable")
        self._on_method_toggled()

    def _on_method_toggled(self, *_: Any) -> None:
        n = len(self.selected_methods())
        self.summary_label.setText(f"{n} method{'s' if n != 1 else ''}")
        self.compare_button.setEnabled(n > 0 and not self.is_running())

    def _on_compare_clicked(self) -> None:
        self.start_comparison()

    def _on_stop_clicked(self) -> None:
        self.stop()

    def _on_history_activated(self, index: int) -> None:
        cid = self.history_combo.itemData(index)
        if cid:
            self.show_comparison(cid)


def _facts_for(config: RunConfig) -> Optional[ModelFacts]:
    from studio.core.models import ModelError, resolve_facts

    try:
        return resolve_facts(config.model.source, config.model.path)
    except (ModelError, OSError, ValueError):
        return None


def _describe(runs: list[Run]) -> str:
    try:
        steps = runs[0].config().training.max_steps if runs else 0
    except Exception:  # a damaged config: say less
        steps = 0
    n = len(runs)
    return f"{n} method{'s' if n != 1 else ''}" + (f", {steps} steps each" if steps else "")


def _lr_of(run: Run) -> float:
    try:
        return run.config().training.learning_rate
    except Exception:  # a damaged config still gets a row
        return 0.0


def _title(method: str) -> str:
    from studio.core.methods import method_class

    try:
        return method_class(method).info.title
    except KeyError:
        return method
