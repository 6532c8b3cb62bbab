"""ExportsTableModel: a run's finished exports (studio.core.exports.list_exports) with their verdicts."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from studio.core.disk import human_bytes
from studio.core.exports import KIND_TITLES, ExportInfo
from studio.ui.theme import COLORS
from studio.ui.widgets.list_table import ListTableModel

COLUMNS = ("Folder", "Kind", "Size", "Verification")


class ExportsTableModel(ListTableModel):
    columns = COLUMNS

    def set_exports(self, exports: list[ExportInfo]) -> None:
        self._reset_rows(exports)

    def export(self, row: int) -> ExportInfo:
        return self._rows[row]

    def row_of(self, folder: Any) -> int:
        return next((i for i, e in enumerate(self._rows) if str(e.folder) == str(folder)), -1)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Optional[Any]:
        if not index.isValid():
            return None
        e: ExportInfo = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            verdict = "not verified" if e.verdict is None else "PASSED" if e.verdict.get("passed") else "FAILED"
            quant = f" {e.verdict['quant'].upper()}" if e.kind == "gguf" and (e.verdict or {}).get("quant") else ""
            return (e.folder.name, KIND_TITLES.get(e.kind, e.kind) + quant, human_bytes(e.size), verdict)[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            if e.verdict is None:
                return QColor(COLORS["faint"])
            return QColor(COLORS["mint"] if e.verdict.get("passed") else COLORS["red"])
        if role == Qt.ItemDataRole.ToolTipRole:
            return str(e.folder) if col == 0 else (e.verdict or {}).get("summary")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
