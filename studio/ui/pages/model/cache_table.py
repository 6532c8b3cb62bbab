"""CacheTableModel: the models found in the Hugging Face cache, as a read-only table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from studio.ui.widgets.card import fmt_bytes, fmt_params
from studio.ui.widgets.list_table import ListTableModel

if TYPE_CHECKING:
    from studio.core.models import ModelFacts

COLUMNS = ("Model", "Architecture", "Parameters", "Size on disk")


class CacheTableModel(ListTableModel):
    columns = COLUMNS

    def set_facts(self, facts: list[ModelFacts]) -> None:
        self._reset_rows(facts)

    def facts(self, row: int) -> ModelFacts:
        return self._rows[row]


    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        f = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.name, f.architecture, fmt_params(f.num_params), fmt_bytes(f.size_on_disk))[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f.path
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
