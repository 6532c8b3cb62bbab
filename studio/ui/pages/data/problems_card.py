"""ProblemsCard: every problem found in the rows, with where it is and how to fix it."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from studio.core.data import Problem
from studio.ui.widgets.card import Card

MAX_HEIGHT = 360  # the table's height at most; more problems scroll
SIZED_ROWS = 12  # rows the table's height is fitted to


class ProblemsCard(Card):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Problems", "", parent=parent)
        self._table = QTableWidget(0, 2)
        self._table.setObjectName("problems")
        self._table.setHorizontalHeaderLabels(["Where", "What, and how to fix it"])
        self._table.verticalHeader().hide()
        self._table.setShowGrid(False)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.setWordWrap(True)
        self._table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self._table.horizontalHeader().setStretchLastSection(True)
        self.body.addWidget(self._table)

    def show_problems(self, problems: Sequence[Problem], count: int) -> None:
        """The listed problems (``count`` may be more: only the first are kept)."""
        self._table.setRowCount(len(problems))
        for row, p in enumerate(problems):
            where = p.file.rsplit("/", 1)[-1] + (f":{p.line}" if p.line else "") if p.file else \
                (f"row {p.line}" if p.line else "")
            for col, text in enumerate((where, p.message)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{p.file}:{p.line}" if col == 0 and p.file else text)
                self._table.setItem(row, col, item)
        self._table.resizeRowsToContents()
        self._table.setVisible(bool(problems))
        rows_h = sum(self._table.rowHeight(r) for r in range(min(len(problems), SIZED_ROWS)))
        self._table.setFixedHeight(min(MAX_HEIGHT, self._table.horizontalHeader().height() + rows_h + 6))
        listed = f" ({len(problems):,} listed)" if count > len(problems) else ""
        self.set_subtitle(f"{count:,} problem{'s' if count != 1 else ''}{listed}; "
                          "rows with problems are skipped, the rest train." if count else "None found.")

    def rows(self) -> list[tuple[str, str]]:
        t = self._table
        return [(t.item(r, 0).text(), t.item(r, 1).text()) for r in range(t.rowCount())]
