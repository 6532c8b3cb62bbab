"""EvaluateView: the Runs page's Evaluate tab: how much each checkpoint learned, and the base beside it.

It shows ``RUN_DIR/eval/latest.json`` (studio.core.evaluation.latest_result) when the run has been
evaluated; Evaluate runs ``--worker eval RUN_DIR [--checkpoint best|all] [--prompts FILE]`` in a
WorkerProcess and fills the table as its ``eval_row`` events arrive, then shows the answers. A row
of trained weights can be exported ("Export this checkpoint") or chatted with; the page turns
those into run actions for the pages that do them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLineEdit,
                               QProgressBar, QPushButton, QSizePolicy, QTableView, QVBoxLayout, QWidget)

from studio.core.evaluation import best_label, latest_result
from studio.core.runs import Run, RunState
from studio.ui.pages.runs.eval_samples import SamplesView
from studio.ui.pages.runs.eval_table import EvalCellDelegate, EvalTableModel, label_title
from studio.ui.process import WorkerProcess, split_log_tail
from studio.ui.theme import icon
from studio.ui.widgets.card import Banner, fmt_duration, muted

ROW_HEIGHT = 34
PHASES = {"loading_data": "Reading the held-out prompts", "loading_model": "Loading the model",
          "evaluating": "Validation loss"}
INTRO = ("Not evaluated yet. Evaluate scores the base model, every kept checkpoint and the final weights by "
         "validation loss and perplexity, then has the base and the best checkpoint answer the held-out prompts "
         "(the run's validation split, or a file you choose), scored by exact match, ROUGE-L, BLEU and chrF. "
         "The demo takes about 15 seconds on a CPU.")


def _has_weights(run: Run) -> bool:
    from studio.core.checkpoints import list_checkpoints

    return (run.adapter_dir.is_dir() and any(run.adapter_dir.glob("*.safetensors"))) or bool(list_checkpoints(run.path))


class EvaluateView(QWidget):
    sig_export_requested = Signal(object, dict)  # Run, the row (label, path, ...)
    sig_chat_requested = Signal(object, dict)
    sig_busy_changed = Signal(bool)  # an evaluation started (True) or ended: completed, failed or cancelled

    def __init__(self, can_chat: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.run: Optional[Run] = None
        self.worker: Optional[WorkerProcess] = None
        self._worker_run: Optional[Run] = None
        self._shown_key: Any = None
        self._result: Optional[dict[str, Any]] = None
        self._cancelled = False
        self._started = 0.0
        self.table_model = EvalTableModel(self)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 10, 2, 2)
        lay.setSpacing(10)
        lay.addLayout(self._build_options())
        run_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumWidth(220)
        self.progress.setMinimumWidth(60)
        self.progress_label = muted("", wrap=False, role="faint")
        self.progress_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.progress_label, 2)
        run_row.addStretch(0)
        run_row.addWidget(self.cancel_button)
        lay.addLayout(run_row)
        self.banner = Banner()
        lay.addWidget(self.banner)
        self.table = QTableView()
        self.table.setObjectName("eval_table")
        self.table.setModel(self.table_model)
        self.table.setItemDelegate(EvalCellDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setHorizontalScrollBarPolicy(self.table.horizontalScrollBarPolicy().ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, 210)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row_changed)
        lay.addWidget(self.table)
        lay.addLayout(self._build_row_actions(can_chat))
        self.samples = SamplesView()
        lay.addWidget(self.samples)
        lay.addStretch(1)
        self._set_running(False)
        self._fit_table()

    def _build_options(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(muted("Answers from", wrap=False))
        self.which_combo = QComboBox()
        self.which_combo.setObjectName("eval_which_combo")
        self.which_combo.addItem("the best weights", "best")
        self.which_combo.addItem("every checkpoint", "all")
        self.which_combo.setToolTip("Whose answers are generated and scored beside the base model's. Validation "
                                    "loss is always computed for every checkpoint.")
        row.addWidget(self.which_combo)
        row.addSpacing(6)
        self.prompts_edit = QLineEdit()
        self.prompts_edit.setObjectName("eval_prompts_edit")
        self.prompts_edit.setPlaceholderText("Held-out prompts: the run's validation split")
        self.prompts_edit.setToolTip("Held-out prompts: the run's validation split, or a file of prompt/answer "
                                     "rows (or any format the studio trains on: the last answer is the reference).")
        self.prompts_edit.setMinimumWidth(110)
        row.addWidget(self.prompts_edit, 1)
        browse = QPushButton("File…")
        browse.setToolTip("Choose a file of held-out prompts")
        browse.setProperty("flat", True)
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(browse)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("eval_cancel_button")
        self.cancel_button.setProperty("flat", True)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.eval_button = QPushButton("  Evaluate")
        self.eval_button.setObjectName("eval_button")
        self.eval_button.setIcon(icon("play", "#ffffff"))
        self.eval_button.setProperty("primary", True)
        self.eval_button.setMinimumWidth(140)
        self.eval_button.clicked.connect(self._on_evaluate_clicked)
        row.addSpacing(6)
        row.addWidget(self.eval_button)
        return row

    def _build_row_actions(self, can_chat: bool) -> QHBoxLayout:
        row = QHBoxLayout()
        self.info_label = muted("", wrap=True, role="faint")
        row.addWidget(self.info_label, 1)
        self.export_row_button = QPushButton("Export this checkpoint")
        self.export_row_button.setObjectName("eval_export_button")
        self.export_row_button.setIcon(icon("export"))
        self.export_row_button.clicked.connect(self._on_export_row_clicked)
        row.addWidget(self.export_row_button)
        self.chat_row_button = QPushButton("Chat with it")
        self.chat_row_button.setObjectName("eval_chat_button")
        self.chat_row_button.clicked.connect(self._on_chat_row_clicked)
        row.addWidget(self.chat_row_button)
        if not can_chat:  # (never setVisible(True) here: a parentless widget shown is a window)
            self.chat_row_button.hide()
        return row

    # ---- the shown run ------------------------------------------------------------------
    def set_run(self, run: Optional[Run], force: bool = False) -> None:
        """Show ``run``'s latest evaluation (re-read only when the run or its result file changed)."""
        key = None if run is None else (run.path, _mtime(run), run.state)
        if key == self._shown_key and not force:
            return
        same_run = self.run is not None and run is not None and self.run.path == run.path
        self.run, self._shown_key = run, key
        if not same_run:
            self.banner.show_message("")
        if self._evaluating_shown():
            return  # the live table stays; the result is read when the worker finishes
        self._result = latest_result(run.path) if run is not None else None
        self._show_result()
        self._update_buttons()

    def _show_result(self) -> None:
        result = self._result
        if result is None:
            self.table_model.set_rows([], None)
            self.samples.set_samples([], [], None)
            self.info_label.setText("")
            if self.run is not None and not self.banner.text():
                self.banner.show_message(INTRO, "info")
        else:
            if self.banner.text() == INTRO:
                self.banner.show_message("")
            self.table_model.set_rows(result.get("rows") or [], result.get("best"))
            self.samples.set_samples(result.get("samples") or [], result.get("generated") or [], result.get("best"))
            self.info_label.setText(describe(result))
            best = self.table_model.row_of(result.get("best") or "")
            if best >= 0:
                self.table.selectRow(best)
        has_rows = self.table_model.rowCount() > 0
        self.table.setVisible(has_rows)
        self.samples.setVisible(result is not None)
        self._fit_table()

    def _fit_table(self) -> None:
        rows = max(1, self.table_model.rowCount())
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows * ROW_HEIGHT + 4)

    def selected_row(self) -> Optional[dict[str, Any]]:
        index = self.table.selectionModel().currentIndex()
        return self.table_model.row(index.row()) if index.isValid() else None

    def select_label(self, label: str) -> None:
        i = self.table_model.row_of(label)
        if i >= 0:
            self.table.selectRow(i)

    def _on_table_row_changed(self, *_args: Any) -> None:
        row = self.selected_row()
        if row is not None and row.get("label") != "base":
            self.samples.choose(row["label"])
        self._update_buttons()

    def _update_buttons(self) -> None:
        run, busy = self.run, self.busy()
        problem = ""
        if run is None:
            problem = "Select a run."
        elif run.state.live:
            problem = "The run is still training; evaluate it once it has finished or stopped."
        elif not _has_weights(run):
            problem = "This run has no trained weights yet (no adapter, no checkpoint): there is nothing to evaluate."
        self.eval_button.setEnabled(not problem and not busy)
        self.eval_button.setToolTip(problem)
        self.eval_button.setText("  Evaluate again" if self._result is not None else "  Evaluate")
        row = self.selected_row()
        trained = row is not None and bool(row.get("path")) and row.get("label") != "base"
        for b in (self.export_row_button, self.chat_row_button):
            b.setEnabled(trained and not busy)
            b.setToolTip("" if trained else "Select the row of a checkpoint or of the final weights.")
        if trained:
            self.export_row_button.setText(f"Export {label_title(row['label']).lower()}")
        else:
            self.export_row_button.setText("Export this checkpoint")

    # ---- evaluating ---------------------------------------------------------------------
    def busy(self) -> bool:
        return self.worker is not None  # from the click until its outcome arrives

    def _evaluating_shown(self) -> bool:
        return self.busy() and self.run is not None and self._worker_run is not None \
            and self._worker_run.path == self.run.path

    def set_prompts_file(self, path: str) -> None:
        self.prompts_edit.setText(path)

    def evaluate(self) -> bool:
        """Start the eval worker on the shown run; False (with the reason shown) when it cannot start."""
        run = self.run
        if run is None or self.busy() or not self.eval_button.isEnabled():
            return False
        args = ["--checkpoint", self.which_combo.currentData()]
        prompts = self.prompts_edit.text().strip()
        if prompts:
            path = Path(prompts).expanduser()
            if not path.is_file():
                self.banner.show_message(f"{path} is not a file: choose a file of prompt/answer rows, or clear the "
                                         "field to use the run's validation split.", "warn")
                return False
            args += ["--prompts", str(path.resolve())]
        worker = WorkerProcess(run, kind="eval", extra_args=tuple(args), parent=self)
        worker.sig_event_received.connect(self._on_worker_event_received)
        worker.sig_finished.connect(self._on_worker_finished)
        self.worker, self._worker_run = worker, run
        self._started = time.monotonic()
        self._result = None
        self.table_model.set_rows([], None)
        self.samples.set_samples([], [], None)
        self.samples.hide()
        self.table.show()
        self.info_label.setText("")
        self.banner.show_message("")
        self._set_running(True)
        self.progress_label.setText("Starting the evaluation…")
        try:
            worker.start()
        except OSError as e:
            self._on_worker_finished(RunState.FAILED, f"The evaluation could not start: {e}")
            return False
        return True

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.progress_label.setVisible(running)
        self.cancel_button.setVisible(running)
        self.progress.setRange(0, 0)
        self._update_buttons()
        self.sig_busy_changed.emit(running)

    def kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def _on_worker_event_received(self, event: dict) -> None:
        kind = event.get("type")
        shown = self._evaluating_shown()
        if kind == "eval_row" and shown:
            self.table_model.update_row({k: v for k, v in event.items() if k not in ("type", "t")})
            self.table_model.set_best(best_label(self.table_model.rows()))
            self._fit_table()
        elif kind == "phase":
            self.progress.setRange(0, 0)
            self.progress_label.setText(f"{PHASES.get(event.get('phase'), event.get('phase', ''))}: "
                                        f"{event.get('detail') or ''}".rstrip(": ") + "…")
        elif kind == "progress" and event.get("total"):
            self.progress.setRange(0, int(event["total"]))
            self.progress.setValue(int(event.get("current") or 0))
            self.progress_label.setText(f"{str(event.get('label', '')).capitalize()}: "
                                        f"{event.get('current')}/{event.get('total')} prompts")
        elif kind == "warning" and shown:
            self.banner.show_message(str(event.get("message", "")), "warn")

    def _on_worker_finished(self, state: str, message: str) -> None:
        run = self._worker_run
        cancelled = self._cancelled
        self.worker, self._worker_run, self._cancelled = None, None, False
        self._set_running(False)
        if run is not None and self.run is not None and run.path == self.run.path:
            warning = self.banner.text() if self.banner.tone == "warn" else ""
            if cancelled:
                self.banner.show_message("Evaluation cancelled; nothing was written.", "info")
            elif state != RunState.COMPLETED:
                summary, _tail = split_log_tail(message or "The evaluation failed.")
                log = run.path / "eval" / "eval.log"
                self.banner.show_message(f"The evaluation failed: {summary} (its log: {log})", "error")
            else:
                self.banner.show_message(warning, "warn")
            self.set_run(self.run, force=True)

    def _on_cancel_clicked(self) -> None:
        if self.busy():
            self._cancelled = True
            self.worker.kill()  # nothing is written until the end: stopping at once loses nothing

    def _on_evaluate_clicked(self) -> None:
        self.evaluate()

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Held-out prompts", self.prompts_edit.text() or str(Path.home()),
                                              "Data files (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)")
        if path:
            self.prompts_edit.setText(path)

    def _on_export_row_clicked(self) -> None:
        row = self.selected_row()
        if row is not None and self.run is not None and row.get("path"):
            self.sig_export_requested.emit(self.run, row)

    def _on_chat_row_clicked(self) -> None:
        row = self.selected_row()
        if row is not None and self.run is not None and row.get("path"):
            self.sig_chat_requested.emit(self.run, row)


def describe(result: dict[str, Any]) -> str:
    """'Evaluated 3 min ago on cpu · 24 prompts from the validation split · took 12 s · generation 388 tokens/s'"""
    parts = []
    created = result.get("created")
    if isinstance(created, (int, float)):
        parts.append(f"Evaluated {_ago(time.time() - created, created)}"
                     + (f" on {result['device']}" if result.get("device") else ""))
    prompts = result.get("prompts") or {}
    n = (result.get("throughput") or {}).get("prompts")
    if prompts.get("source") == "file":
        parts.append(f"{n if n is not None else '?'} prompts from {Path(prompts.get('path', '')).name}")
    elif n is not None:
        parts.append(f"{n} held-out prompts from the validation split")
    seconds = (result.get("throughput") or {}).get("seconds")
    if isinstance(seconds, (int, float)):
        parts.append(f"took {fmt_duration(seconds)}")
    return "  ·  ".join(parts)


def _ago(seconds: float, when: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return time.strftime("on %Y-%m-%d %H:%M", time.localtime(when))


def _mtime(run: Run) -> float:
    try:
        return (run.path / "eval" / "latest.json").stat().st_mtime
    except OSError:
        return 0.0
