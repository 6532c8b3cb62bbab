"""PreviewCard: the first rows as they are, and one example exactly as the model reads it (loss mask, tokens)."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QSpinBox, QTableView,
                               QTabWidget, QTextBrowser, QVBoxLayout, QWidget)

from studio.core.data import Preview, RenderedRow
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data.rows_table import RowsTableModel
from studio.ui.pages.data.sample_view import legend_html, pieces_html, tokens_html
from studio.ui.widgets.card import Card, muted

SHOWN_EXAMPLES = 20  # examples the spin box steps through
COLUMN_WIDTH = 360  # the widest a raw column starts


class PreviewCard(Card):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__("Preview", "The first rows as they are, and exactly as the model will read them.",
                         parent=parent)
        self._model = config_model
        self._rendered: list[RenderedRow] = []
        self.tokenizer_error = ""  # why the token view is missing, once the tokenizer failed
        self.tabs = QTabWidget()
        self._rows_model = RowsTableModel(self)
        self._rows_view = QTableView()
        self._rows_view.setModel(self._rows_model)
        self._rows_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._rows_view.setAlternatingRowColors(True)
        self._rows_view.setShowGrid(False)
        self._rows_view.setWordWrap(False)
        self._rows_view.horizontalHeader().setStretchLastSection(True)
        self._rows_view.verticalHeader().setDefaultSectionSize(26)
        self._rows_view.setMinimumHeight(240)
        self._rows_view.doubleClicked.connect(self._on_row_double_clicked)
        self.tabs.addTab(self._build_rendered_tab(), "As the model sees it")
        self.tabs.addTab(self._rows_view, "Raw rows")
        self.body.addWidget(self.tabs)

    def _build_rendered_tab(self) -> QWidget:
        rendered = QWidget()
        rl = QVBoxLayout(rendered)
        rl.setContentsMargins(0, 8, 0, 0)
        bar = QHBoxLayout()
        self._row_spin = QSpinBox()
        self._row_spin.setPrefix("Example ")
        self._row_spin.setMinimum(1)
        self._row_spin.valueChanged.connect(lambda _: self.show_sample())
        self.tokens_check = QCheckBox("Show tokens")
        self.tokens_check.setObjectName("show_tokens")
        self.tokens_check.toggled.connect(lambda _: self.show_sample())
        self.sample_info = muted("", wrap=False, role="faint")
        self.sample_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # clips, never widens
        bar.addWidget(self._row_spin)
        bar.addWidget(self.tokens_check)
        bar.addWidget(self.sample_info, 1)
        bar.addWidget(QLabel(legend_html()))
        rl.addLayout(bar)
        self._sample_view = QTextBrowser()
        self._sample_view.setObjectName("sample_view")
        self._sample_view.setMinimumHeight(220)
        rl.addWidget(self._sample_view)
        return rendered

    @property
    def rendered(self) -> list[RenderedRow]:
        return self._rendered

    def sample_html(self) -> str:
        return self._sample_view.toHtml()

    def set_preview(self, preview: Optional[Preview]) -> None:
        """The raw rows of a preview (None: none to show)."""
        self._rows_model.set_preview(preview)
        if preview is None:
            self.set_rendered([])
            return
        self._rows_view.resizeColumnsToContents()
        for c in range(self._rows_model.columnCount()):
            self._rows_view.setColumnWidth(c, min(self._rows_view.columnWidth(c), COLUMN_WIDTH))
        self._row_spin.setMaximum(max(1, min(len(preview.rows), SHOWN_EXAMPLES)))

    def set_rendered(self, rendered: list[RenderedRow]) -> None:
        self._rendered = rendered
        self.show_sample()

    def show_failure(self, message: str) -> None:
        """Rendering the examples failed: say why where the example would be."""
        self._sample_view.setHtml(f"<p style='color:#ff9a9a'>{message}</p>")

    def show_sample(self) -> None:
        i = self._row_spin.value() - 1
        if not self._rendered or i >= len(self._rendered):
            self._sample_view.setHtml("")
            self.sample_info.setText("")
            return
        r = self._rendered[i]
        where = f"{r.location[0].rsplit('/', 1)[-1]}:{r.location[1]}"
        if r.problem:
            self._sample_view.setHtml(f"<p style='color:#ff9a9a'>{where}: {r.problem}</p>")
            self.sample_info.setText("this row is skipped")
            return
        max_len = self._model.config.training.max_seq_len
        if self.tokens_check.isChecked() and r.tokens is not None:
            self._sample_view.setHtml(tokens_html(r.tokens, max_len))
        else:
            self._sample_view.setHtml(pieces_html(r.pieces))
        self.sample_info.setText(self._sample_text(r, where, max_len))

    def _sample_text(self, r: RenderedRow, where: str, max_len: int) -> str:
        if r.tokens is not None:
            cut = f" · cut at {max_len:,}" if r.truncated else ""
            return f"{where} · {r.n_tokens:,} tokens, {r.n_loss:,} carry loss{cut}"
        if self.tokenizer_error:
            return f"{where} · no token view: the model's tokenizer can't be read"
        return f"{where} · loading the tokenizer…"

    def _on_row_double_clicked(self, index: Any) -> None:
        self._row_spin.setValue(index.row() + 1)
        self.tabs.setCurrentIndex(0)
