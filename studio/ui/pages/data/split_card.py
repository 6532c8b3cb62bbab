"""SplitCard: the held-out share or file, the shuffle seed, duplicates and packing (DataSpec's fields, bound),
with what the statistics found about duplicates and packing under them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QGridLayout, QHBoxLayout, QPushButton, QWidget

from studio.core.config import RunConfig
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data.source_card import DATASET_FILES
from studio.ui.widgets.card import Card, muted
from studio.ui.widgets.config_form import BoundField

if TYPE_CHECKING:
    from studio.core.data.stats import DataStats

PACKING_HINT = "Fewer, fuller sequences: faster when examples are much shorter than the max length."


class SplitCard(Card):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__("Split and clean-up", "Held-out rows measure validation loss; the seed makes the shuffle "
                                               "repeatable.", parent=parent)
        self._model = config_model
        self.fields = {name: BoundField(config_model, f"data.{name}") for name in (
            "validation_split", "validation_path", "shuffle_seed", "dedup", "packing")}
        self.fields["validation_path"].widget.setPlaceholderText("or a separate validation file")
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        val_row = QHBoxLayout()
        val_browse = QPushButton("Browse…")
        val_browse.clicked.connect(self._on_pick_val_file_clicked)
        val_row.addWidget(self.fields["validation_path"].widget, 1)
        val_row.addWidget(val_browse)
        for col, name in enumerate(("validation_split", "validation_path", "shuffle_seed")):
            field = self.fields[name]
            grid.addWidget(field.label, 0, col)
            if name == "validation_path":
                grid.addLayout(val_row, 1, col)
            else:
                grid.addWidget(field.widget, 1, col)
            grid.addWidget(field.error, 2, col)
        grid.setColumnStretch(1, 2)
        self.dedup_note = muted("", role="faint")
        self.packing_note = muted("", role="faint")
        grid.addWidget(self.fields["dedup"].widget, 3, 0)
        grid.addWidget(self.dedup_note, 4, 0)
        grid.addWidget(self.fields["packing"].widget, 3, 1, 1, 2)
        grid.addWidget(self.packing_note, 4, 1, 1, 2)
        self.body.addLayout(grid)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_config_changed(config_model.config)

    def show_stats(self, s: "DataStats") -> None:
        """What the statistics found about duplicates and packing."""
        self.dedup_note.setText(f"{s.duplicates:,} duplicates found" if self._model.config.data.dedup
                                else "duplicates are kept")
        self.packing_note.setText(
            f"{s.train_rows:,} rows → {s.sequences:,} sequences, {s.packing_efficiency:.0%} of each filled"
            if s.packing and s.packing_efficiency is not None else PACKING_HINT)

    def _on_config_changed(self, config: RunConfig) -> None:
        self.fields["validation_split"].widget.setEnabled(not config.data.validation_path)  # the file wins

    def _on_pick_val_file_clicked(self) -> None:
        field = self.fields["validation_path"]
        path, _ = QFileDialog.getOpenFileName(self, "Choose a validation file", field.widget.text(), DATASET_FILES)
        if path:
            field.commit(path)
