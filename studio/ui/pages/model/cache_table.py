"""CacheTableModel: the models found in the Hugging Face cache, as a read-only table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from studio.ui.widgets.card import fmt_bytes, fmt_params

COLUMNS = ("Model", "Architecture", "Parameters", "Size on disk")


class CacheTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._facts: list[Any] = []

    def set_facts(self, facts: list[Any]) -> None:
        self.beginResetModel()
        self._facts = list(facts)
        self.endResetModel()

    def facts(self, row: int) -> Any:
        return self._facts[row]

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._facts)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        f = self._facts[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.name, f.architecture, fmt_params(f.num_params), fmt_bytes(f.size_on_disk))[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f.path
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
