"""ComparisonTableModel: comparison rows (studio.core.compare.MethodResult) as a read-only Qt table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from studio.core.compare import TABLE_COLUMNS, MethodResult, table_cells
from studio.core.runs import RunState
from studio.ui.theme import COLORS
from studio.ui.widgets.list_table import ListTableModel

_STATE_COLORS = {RunState.COMPLETED: COLORS["mint"], RunState.FAILED: COLORS["red"], RunState.KILLED: COLORS["red"],
                 RunState.STOPPED: COLORS["amber"], RunState.RUNNING: COLORS["sky"], RunState.CREATED: COLORS["faint"]}
_BEST_LOWER = {"Train time", "Peak mem", "Train loss", "Val loss"}  # columns where the lowest value wins
_BEST_HIGHER = {"Tokens/s"}


class ComparisonTableModel(ListTableModel):
    columns = tuple(TABLE_COLUMNS)

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._cells: list[list[str]] = []
        self.colors: dict[str, str] = {}  # method -> curve colour, shown as the name's colour

    def set_rows(self, rows: list[MethodResult]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._cells = [table_cells(r) for r in self._rows]
        self.endResetModel()

    @property
    def rows(self) -> list[MethodResult]:
        return list(self._rows)


    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self._rows[index.row()], TABLE_COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cells[index.row()][index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            left = col in ("Method", "State")
            return int((Qt.AlignmentFlag.AlignLeft if left else Qt.AlignmentFlag.AlignRight) | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == "Method":
                return QColor(self.colors.get(row.method, COLORS["text"]))
            if col == "State":
                return QColor(_STATE_COLORS.get(row.state, COLORS["muted"]))
            if self._is_best(index.row(), col):
                return QColor(COLORS["mint"])
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == "State" and row.message:
                return row.message
            if col == "Method":
                return f"run {row.run_id}"
        return None

    def _is_best(self, r: int, col: str) -> bool:
        key = {"Train time": "train_s", "Peak mem": "peak_mem", "Train loss": "final_loss",
               "Val loss": "final_val_loss", "Tokens/s": "tokens_per_s"}.get(col)
        if key is None or len(self._rows) < 2:
            return False
        values = [getattr(x, key) for x in self._rows if x.state == RunState.COMPLETED and getattr(x, key) is not None]
        mine = getattr(self._rows[r], key)
        if mine is None or len(values) < 2 or self._rows[r].state != RunState.COMPLETED:
            return False
        return mine == (min(values) if col in _BEST_LOWER else max(values))
