"""PlanTableModel: a PlanTable (studio.core.vram.plan) as a read-only Qt table, methods x lengths."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from studio.core.vram.plan import NOT_APPLICABLE, PlanTable


class PlanTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self._table: Optional[PlanTable] = None

    def set_table(self, table: Optional[PlanTable]) -> None:
        self.beginResetModel()
        self._table = table
        self.endResetModel()

    @property
    def table(self) -> Optional[PlanTable]:
        return self._table

    def cell(self, row: int, col: int) -> int:
        return self._table.rows[row].max_batch[col] if self._table else 0

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or not self._table else len(self._table.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() or not self._table else len(self._table.seq_lens)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if not self._table:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal:
                n = self._table.seq_lens[section]
                return f"{n // 1024}k tokens" if n >= 1024 and n % 1024 == 0 else f"{n} tokens"
            return self._table.rows[section].title
        if role == Qt.ItemDataRole.TextAlignmentRole and orientation == Qt.Orientation.Vertical:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not self._table:
            return None
        b = self.cell(index.row(), index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return "n/a" if b == NOT_APPLICABLE else ("—" if b == 0 else str(b))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor("#5f6878") if b <= 0 else QColor("#e7e9ee")
        if role == Qt.ItemDataRole.BackgroundRole and b > 0:
            # greener with more room: 1 sequence is a squeeze, 8+ is comfortable
            strength = min(1.0, 0.35 + 0.65 * min(b, 16) / 16)
            return QColor(52, 209, 160, int(30 + 70 * strength))
        if role == Qt.ItemDataRole.ToolTipRole:
            row = self._table.rows[index.row()]
            seq = self._table.seq_lens[index.column()]
            if b == NOT_APPLICABLE:
                return f"{seq} tokens is longer than this model's context window."
            if b == 0:
                return f"{row.title} at {seq} tokens does not fit, not even one sequence per micro-batch."
            return (f"{row.title} at {seq} tokens: up to {b} sequence{'s' if b > 1 else ''} per micro-batch "
                    f"({b * seq:,} tokens). Click 'Use this' to set it up.")
        return None


class PlanCellDelegate(QStyledItemDelegate):
    """Paints each cell's background as a rounded chip (the style sheet would otherwise hide it)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        color = index.data(Qt.ItemDataRole.BackgroundRole)
        if isinstance(color, QColor):
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(QRectF(option.rect).adjusted(4, 4, -4, -4), 6, 6)
            painter.restore()
        super().paint(painter, option, index)
