"""RunsTableModel: the runs in a RunStore as table rows (name, run folder, state, method, model, times, loss).

The store on disk is the data; ``refresh()`` re-reads it into one summary per run so that
painting never touches the disk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from studio.core.config import ConfigError
from studio.core.run_roots import all_runs
from studio.core.runs import ACTIVE_STATES, Run, RunState
from studio.ui.theme import COLORS
from studio.ui.widgets.card import fmt_duration
from studio.ui.widgets.list_table import ListTableModel

COLUMNS = ("Name", "Run", "State", "Method", "Model", "Started", "Duration", "Final loss")
NUMERIC_FROM = 6  # Duration and Final loss are right-aligned
STATE_COLORS = {RunState.COMPLETED: COLORS["mint"], RunState.RUNNING: COLORS["accent"],
                RunState.STOPPING: COLORS["accent"], RunState.STOPPED: COLORS["amber"], RunState.FAILED: COLORS["red"],
                RunState.KILLED: COLORS["red"]}


@dataclass(frozen=True)
class RunSummary:
    run: Run
    name: str
    state: str
    method: str
    model: str
    started: Optional[float]
    duration: Optional[float]
    final_loss: Optional[float]


def summarize(run: Run) -> RunSummary:
    status = run.status()
    try:
        config = run.config()
        method, name = type(config.method).info.title, config.name
        model = "demo" if config.model.source == "demo" else config.model.path.rstrip("/").split("/")[-1]
        if "snapshots" in config.model.path:  # an HF cache folder: show the repo, not the hash
            parts = config.model.path.split("/")
            repo = next((p for p in parts if p.startswith("models--")), "")
            model = repo[len("models--"):].replace("--", "/") or model
    except (ConfigError, OSError):
        method, name, model = "?", status.get("name", run.id), "?"
    started = status.get("started") or status.get("created")
    ended = status.get("ended")
    state = RunState.of(status.get("state", RunState.CREATED))
    duration = (ended or (time.time() if state.live else None))
    duration = duration - started if duration and started else None
    loss = status.get("final_loss")
    if loss is None and state not in ACTIVE_STATES:
        steps = [e for e in run.events() if e.get("type") == "step" and isinstance(e.get("loss"), (int, float))]
        loss = steps[-1]["loss"] if steps else None
    return RunSummary(run, name, state, method, model, started, duration, loss)


class RunsTableModel(ListTableModel):
    columns = COLUMNS

    def __init__(self, store_root=None, parent=None):
        super().__init__(parent)
        self._root = store_root

    def refresh(self) -> None:
        runs = all_runs(self._root)
        for r in runs:
            r.reconcile()  # a worker that died unseen is marked failed, never "running" forever
        rows = sorted((summarize(r) for r in runs), key=lambda s: s.started or 0, reverse=True)
        self._reset_rows(rows)

    def summary(self, row: int) -> RunSummary:
        return self._rows[row]

    def row_of(self, run_id: str) -> int:
        return next((i for i, s in enumerate(self._rows) if s.run.id == run_id), -1)


    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        s = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            started = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.started)) if s.started else "—"
            loss = f"{s.final_loss:.4f}" if isinstance(s.final_loss, (int, float)) else "—"
            # The run's folder name tells apart runs that share a name (every demo run is "demo").
            return (s.name, s.run.id, s.state, s.method, s.model, started, fmt_duration(s.duration), loss)[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 2:
            return QColor(STATE_COLORS.get(s.state, COLORS["muted"]))
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return QColor(COLORS["muted"])
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(s.run.path)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= NUMERIC_FROM:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        """Headers sit over their column's text: left, numbers right (centred, the wide Model one floated)."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignRight if section >= NUMERIC_FROM else Qt.AlignmentFlag.AlignLeft
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        return super().headerData(section, orientation, role)
