"""EvalTableModel: the evaluation table (studio.core.evaluation's rows) as a Qt table, and its cell painter.

One row per weights (the base model, each checkpoint, the final weights) with validation loss,
perplexity and the task metrics (0-100). The row with the lowest validation loss is the best; the
delegate marks it with a BEST pill and draws each task metric over a faint bar of its value, so
"the base answers nothing, the tuned model answers everything" reads at a glance.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from studio.core.evaluation import METRICS
from studio.ui.theme import COLORS
from studio.ui.widgets.list_table import ListTableModel

COLUMNS = ("Weights", "Step", "Val loss", "Perplexity", "Exact match", "ROUGE-L", "BLEU", "chrF")
KEYS = (None, "step", "val_loss", "perplexity") + METRICS
LOWER_IS_BETTER = {"val_loss", "perplexity"}
TIPS = {"val_loss": "Mean token loss on the run's validation split, as the training curve computes it.",
        "perplexity": "exp(validation loss): how many tokens the model hesitates between, on average.",
        "exact_match": "Answers identical to the reference (whitespace trimmed), in % of the held-out prompts.",
        "rouge_l": "ROUGE-L F1 (longest common word subsequence), 0-100.",
        "bleu": "Corpus BLEU (sacrebleu, effective order for short answers), 0-100.",
        "chrf": "chrF (character n-gram F-score, sacrebleu), 0-100."}
BEST_ROLE = Qt.ItemDataRole.UserRole + 1  # True on the best row's first cell
BAR_ROLE = Qt.ItemDataRole.UserRole + 2  # 0..1 on the task metric cells


def label_title(label: str) -> str:
    """base -> Base model, step-70 -> Checkpoint 70, final -> Final weights."""
    if label == "base":
        return "Base model"
    if label.startswith("step-"):
        return f"Checkpoint {label[5:]}"
    return "Final weights" if label == "final" else label


class EvalTableModel(ListTableModel):
    columns = COLUMNS

    def __init__(self, parent: Any = None):
        super().__init__(parent)
        self.best: Optional[str] = None

    def set_rows(self, rows: list[dict[str, Any]], best: Optional[str]) -> None:
        self.best = best
        self._reset_rows(dict(r) for r in rows)

    def update_row(self, row: dict[str, Any]) -> None:
        """A live ``eval_row`` event: fill in its row (a second event for a label adds the answer scores)."""
        i = self.row_of(row.get("label", ""))
        if i < 0:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
            self._rows.append(dict(row))
            self.endInsertRows()
            return
        self._rows[i].update(row)
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def set_best(self, best: Optional[str]) -> None:
        self.best = best
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1))

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    def row_of(self, label: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.get("label") == label), -1)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = self._rows[index.row()], index.column()
        key = KEYS[col]
        value = row.get(key) if key else None
        base = row.get("label") == "base"
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return label_title(row.get("label", ""))
            if key == "step":
                return "—" if base else f"{value:,}" if isinstance(value, int) else "—"
            return _number(key, value)
        if role == BEST_ROLE and col == 0:
            return row.get("label") == self.best
        if role == BAR_ROLE and key in METRICS and isinstance(value, (int, float)):
            return max(0.0, min(1.0, value / 100))
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignLeft if col == 0 else Qt.AlignmentFlag.AlignRight
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if base:
                return QColor(COLORS["muted"])
            if key and self._is_best(key, value):
                return QColor(COLORS["mint"])
        if role == Qt.ItemDataRole.FontRole and col == 0 and row.get("label") == self.best:
            font = QFont()
            font.setWeight(QFont.Weight.DemiBold)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == 0:
                return row.get("path") or "The base model with the training switched off."
            return TIPS.get(key or "")
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignLeft if section == 0 else Qt.AlignmentFlag.AlignRight
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return TIPS.get(KEYS[section] or "")
        return super().headerData(section, orientation, role)

    def _is_best(self, key: str, value: Any) -> bool:
        """The best value of a column among the trained weights (only when there are two to compare)."""
        if key == "step" or not isinstance(value, (int, float)):
            return False
        values = [r.get(key) for r in self._rows if r.get("label") != "base" and isinstance(r.get(key), (int, float))]
        if len(values) < 2 or len(set(values)) < 2:
            return False
        return value == (min(values) if key in LOWER_IS_BETTER else max(values))


def _number(key: Optional[str], value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if key == "val_loss":
        return f"{value:.4f}"
    if key == "perplexity":
        return f"{value:,.2f}"
    return f"{value:.1f}"


class EvalCellDelegate(QStyledItemDelegate):
    """A BEST pill after the best row's name; a bar under each task metric, as long as its value."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().paint(painter, option, index)
        bar = index.data(BAR_ROLE)
        if isinstance(bar, float):
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            track = QRectF(option.rect).adjusted(18, 0, -8, 0)
            track.setTop(option.rect.bottom() - 5)
            track.setHeight(3)
            painter.setBrush(QColor(COLORS["line"]))
            painter.drawRoundedRect(track, 1.5, 1.5)
            if bar > 0:
                fill = QRectF(track)
                fill.setWidth(max(3.0, track.width() * bar))
                painter.setBrush(QColor(COLORS["mint"] if bar >= 0.9 else COLORS["accent"]))
                painter.drawRoundedRect(fill, 1.5, 1.5)
            painter.restore()
        if index.data(BEST_ROLE):
            self._paint_pill(painter, option, index)

    def _paint_pill(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        font = index.data(Qt.ItemDataRole.FontRole) or option.font
        from PySide6.QtGui import QFontMetrics

        left = option.rect.left() + 8 + QFontMetrics(font).horizontalAdvance(text) + 10
        small = QFont(option.font)
        small.setPixelSize(10)
        small.setWeight(QFont.Weight.Bold)
        width = QFontMetrics(small).horizontalAdvance("BEST") + 14
        pill = QRectF(left, option.rect.center().y() - 9, width, 18)
        if pill.right() > option.rect.right() - 2:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#133326"))
        painter.drawRoundedRect(pill, 9, 9)
        painter.setPen(QColor(COLORS["mint"]))
        painter.setFont(small)
        painter.drawText(pill, int(Qt.AlignmentFlag.AlignCenter), "BEST")
        painter.restore()

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        option.state &= ~QStyle.StateFlag.State_HasFocus
