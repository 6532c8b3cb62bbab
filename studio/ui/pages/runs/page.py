"""RunsPage: the history of runs; the selected run's curves, config, log and evaluation, all read from disk.

The Evaluate tab (studio.ui.pages.runs.evaluate) scores the selected run's checkpoints and hands a
chosen one to the Export (or Chat) page as a run action with its weights (``{"source": path}``).
"""

from __future__ import annotations

import json
import shutil
from typing import Optional

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QMessageBox, QPlainTextEdit, QPushButton, QSizePolicy,
                               QSpacerItem, QSplitter, QTableView, QTabWidget, QWidget)

from studio.core.config import ConfigError
from studio.core.runs import Run, RunState
from studio.ui.config_model import ConfigModel
from studio.ui.pages.runs.evaluate import EvaluateView
from studio.ui.pages.runs.table import COLUMNS, RunsTableModel
from studio.ui.pages.spec import Work
from studio.ui.process import tail_lines
from studio.ui.theme import icon
from studio.ui.widgets.card import Badge, Banner, Card, page_layout, scroll_page
from studio.ui.widgets.curves import MetricsBuffer, TrainingCurves
from studio.ui.widgets.engine_choices import EngineChoicesView, read_engine_json


class RunsPage(QWidget):
    # "export" | "resume" (from its newest checkpoint) | "chat", Run, options ({"source": trained weights, "label"})
    sig_run_action_requested = Signal(str, object, dict)
    sig_work_finished = Signal()  # an evaluation ended

    def __init__(self, config_model: ConfigModel, store_root=None, run_actions: frozenset[str] = frozenset(),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self.table_model = RunsTableModel(store_root, self)
        self._selected: Optional[Run] = None
        self._tail: Optional[_EventsTail] = None

        lay = page_layout(self)
        self.split = split = QSplitter(Qt.Orientation.Vertical)
        top = Card("Runs", "Every run is a folder on disk: its config, events, log and adapter.")
        refresh = QPushButton("Refresh")
        refresh.setProperty("flat", True)
        refresh.clicked.connect(self.refresh)
        top.add_header_widget(refresh)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Model"), QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row_changed)
        self.empty = Banner("No runs yet. Choose a model and press Train; every run appears here.", "info")
        top.body.addWidget(self.table)
        top.body.addWidget(self.empty)
        # Without runs the table is hidden: this takes the card's spare height, which otherwise spread
        # its title, subtitle and message apart.
        self._empty_room = QSpacerItem(0, 0, QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Expanding)
        top.body.addItem(self._empty_room)
        self._top = top
        split.addWidget(top)

        self.detail = Card("Select a run")
        self.state_badge = Badge()
        self.detail.add_header_widget(self.state_badge)
        self.use_button = QPushButton("Use this config")
        self.use_button.setToolTip("Load this run's settings into the Method page to run it again or vary it.")
        self.use_button.clicked.connect(self._on_use_clicked)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setIcon(icon("play"))
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._on_export_clicked)
        self.folder_button = QPushButton("Open folder")
        self.folder_button.setIcon(icon("folder"))
        self.folder_button.clicked.connect(self._on_folder_clicked)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete this run's folder: config, curves, log, adapter and exports.")
        self.delete_button.clicked.connect(self._on_delete_clicked)
        for b in (self.resume_button, self.use_button, self.export_button, self.folder_button, self.delete_button):
            b.setProperty("flat", True)
            self.detail.add_header_widget(b)
        self.message = Banner()
        self.detail.body.addWidget(self.message)
        self.tabs = QTabWidget()
        self.curves = TrainingCurves(horizontal=True)
        self.config_view = QPlainTextEdit()
        self.config_view.setReadOnly(True)
        self.config_view.setProperty("mono", True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setProperty("mono", True)
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.config_view, "Config")
        self.engine_view = EngineChoicesView()  # what "auto" became for this run (RUN_DIR/engine.json)
        self.tabs.addTab(scroll_page(self.engine_view), "Engine choices")
        self.tabs.addTab(self.log_view, "Log")
        self.evaluate_view = EvaluateView(can_chat="chat" in run_actions)
        self.evaluate_view.sig_export_requested.connect(self._on_evaluate_export_requested)
        self.evaluate_view.sig_chat_requested.connect(self._on_evaluate_chat_requested)
        self.evaluate_view.sig_busy_changed.connect(self._on_evaluate_busy_changed)
        self.evaluate_tab = scroll_page(self.evaluate_view, max_width=100_000)
        self.tabs.insertTab(1, self.evaluate_tab, "Evaluate")
        self.detail.body.addWidget(self.tabs, 1)
        split.addWidget(self.detail)
        split.setSizes([300, 460])
        lay.addWidget(split, 1)
        self._set_detail_enabled(False)

        self._live_timer = QTimer(self)  # a selected live run's curves keep growing
        self._live_timer.timeout.connect(self._on_live_timer_timeout)
        self._live_timer.start(2000)
        self.refresh()

    def refresh(self) -> None:
        selected = self._selected.id if self._selected else None
        self.table_model.refresh()
        n = self.table_model.rowCount()
        self.empty.setVisible(n == 0)
        self.table.setVisible(n > 0)
        self._empty_room.changeSize(0, 0, QSizePolicy.Policy.Minimum,
                                    QSizePolicy.Policy.Expanding if n == 0 else QSizePolicy.Policy.Fixed)
        self._top.body.invalidate()
        row = self.table_model.row_of(selected) if selected else (0 if n else -1)
        if row >= 0:
            self.table.selectRow(row)
            self._show_run(self.table_model.summary(row).run)

    def select_run(self, run_id: str) -> None:
        row = self.table_model.row_of(run_id)
        if row >= 0:
            self.table.selectRow(row)

    def _on_table_row_changed(self, current, _previous) -> None:
        if current.isValid():
            self._show_run(self.table_model.summary(current.row()).run)

    def _show_run(self, run: Run) -> None:
        self._selected = run
        status = run.status()
        self._set_detail_enabled(True)
        self.detail.title_label.setText(status.get("name") or run.id)
        self.detail.set_subtitle(str(run.path))
        state = RunState.of(status.get("state"))
        self.state_badge.set_state(state)
        message = status.get("message") or ""
        tone = {RunState.FAILED: "error", RunState.KILLED: "warn", RunState.COMPLETED: "ok"}.get(state, "info")
        self.message.show_message(message, tone)
        self._tail = _EventsTail(run)
        self._tail.poll()
        self.curves.redraw(self._tail.buffer)
        try:
            self.config_view.setPlainText(run.config().to_yaml())
            self.use_button.setEnabled(True)
        except ConfigError as e:
            self.config_view.setPlainText(str(e))
            self.use_button.setEnabled(False)
        self.log_view.setPlainText(run.log_tail(400) or "(no log)")
        self.engine_view.set_choices(read_engine_json(run.path))
        self.evaluate_view.set_run(run)
        self.export_button.setEnabled(run.adapter_dir.exists() and not state.live)
        self.delete_button.setEnabled(not state.live and not self._evaluating(run))
        self._update_resume_button(run)

    def _update_resume_button(self, run: Run) -> None:
        """Enabled for a stopped, failed or killed run with a checkpoint; the tooltip says why not otherwise."""
        from studio.core.checkpoints import describe, resume_problem

        problem = resume_problem(run)
        self.resume_button.setEnabled(not problem)
        self.resume_button.setToolTip(problem or f"{describe(run)} The curve goes on in this run's folder; "
                                      "follow it on the Train page.")
        if not problem:  # say so where the user reads why the run ended
            state = run.state
            message = run.status().get("message") or ""
            tone = {RunState.FAILED: "error", RunState.KILLED: "warn"}.get(state, "info")
            self.message.show_message(f"{message}\n{describe(run)} Press Resume to continue.".strip(), tone)

    def _set_detail_enabled(self, enabled: bool) -> None:
        for b in (self.resume_button, self.use_button, self.export_button, self.folder_button, self.delete_button):
            b.setEnabled(enabled)
        self.state_badge.setVisible(enabled)

    def _on_live_timer_timeout(self) -> None:
        """A live run's curves grow: read only the new lines of its events file."""
        run = self._selected
        if not self.isVisible() or run is None or self._tail is None or self._tail.run.path != run.path:
            return
        state = run.state
        if state.live or RunState.of(self.state_badge.text().lower()).live:
            self._tail.poll()
            if self._tail.buffer.dirty:
                self.curves.redraw(self._tail.buffer)
            if not state.live:  # it just ended: show its outcome and files
                self._show_run(run)

    def _on_use_clicked(self) -> None:
        if self._selected is None:
            return
        try:
            config = self._selected.config()
        except ConfigError as e:
            self.message.show_message(str(e), "error")
            return
        self._model.replace_config(config)
        self.message.show_message("Loaded this run's settings; change what you like and press Train.", "ok")

    def _on_resume_clicked(self) -> None:
        if self._selected is not None:
            self.sig_run_action_requested.emit("resume", self._selected, {})

    def show_action_refused(self, action: str, run: Run, reason: str) -> None:
        """The page that was asked could not export or resume the run: say why here, where the user asked."""
        self.message.show_message(f"Cannot {action} {run.status().get('name') or run.id}: {reason}", "error")

    def _on_export_clicked(self) -> None:
        if self._selected is not None:
            self.sig_run_action_requested.emit("export", self._selected, {})

    def _on_evaluate_export_requested(self, run: Run, row: dict) -> None:
        self.sig_run_action_requested.emit("export", run, {"source": row["path"], "label": row["label"]})

    def _on_evaluate_chat_requested(self, run: Run, row: dict) -> None:
        self.sig_run_action_requested.emit("chat", run, {"source": row["path"], "label": row["label"]})

    def _on_evaluate_busy_changed(self, busy: bool) -> None:
        if self._selected is not None:  # a run being evaluated is not deleted under the worker
            self.delete_button.setEnabled(not self._selected.state.live and not self._evaluating(self._selected))
        if not busy:
            self.sig_work_finished.emit()

    def _evaluating(self, run: Run) -> bool:
        worker_run = self.evaluate_view._worker_run if self.evaluate_view.busy() else None
        return worker_run is not None and worker_run.path == run.path

    # ---- for the window (studio.ui.pages.spec) --------------------------------------------
    def busy_work(self) -> Work:
        return Work.JOB if self.evaluate_view.busy() else Work.NONE

    def kill_work(self) -> None:
        self.evaluate_view.kill()

    def confirm_delete(self, run: Run) -> bool:
        """Ask before deleting; tests replace this method."""
        answer = QMessageBox.question(self, "Delete run", f"Delete {run.id} and everything in {run.path}?\n"
                                      "Its adapter and exports are deleted too. This cannot be undone.")
        return answer == QMessageBox.StandardButton.Yes

    def _on_delete_clicked(self) -> None:
        run = self._selected
        if run is None or run.state.live or self._evaluating(run) or not self.confirm_delete(run):
            return
        try:
            shutil.rmtree(run.path)
        except OSError as e:
            self.message.show_message(f"Could not delete {run.path}: {e.strerror or e}", "error")
            return
        self._selected = None
        self.detail.title_label.setText("Select a run")
        self.detail.set_subtitle("")
        self.message.show_message("")
        self.curves.redraw(MetricsBuffer())
        self.config_view.clear()
        self.engine_view.set_choices({})
        self.evaluate_view.set_run(None)
        self.log_view.clear()
        self._set_detail_enabled(False)
        self.refresh()

    def _on_folder_clicked(self) -> None:
        if self._selected is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._selected.path)))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()


class _EventsTail:
    """A run's events.jsonl read incrementally into a MetricsBuffer."""

    def __init__(self, run: Run):
        self.run = run
        self.buffer = MetricsBuffer()
        self._offset = 0
        self._rest = b""

    def poll(self) -> None:
        self._offset, self._rest = tail_lines(self.run.events_path, self._offset, self._rest, self._on_line)

    def _on_line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return  # a torn line from a killed worker
        if isinstance(event, dict):
            self.buffer.add(event)
