"""FormatCard: how rows become conversations: the detected shape with its evidence, the format settings
(generated from DataSpec's fields and bound to the config), the custom chat template's editor (choosing
"Custom…" writes the template and its text at once), and the hand mapping of columns to fields."""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtWidgets import QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from studio.core.data import Preview
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data.template_editor import TemplateEditor
from studio.ui.widgets.card import Banner, Card, muted
from studio.ui.widgets.config_form import BoundField
from studio.ui.widgets.wheel_guard import guard_field

FIELDS = ("", "instruction", "input", "output", "system", "prompt", "completion", "text", "messages", "conversations")
MAP_COLUMNS = 4  # column drop-downs per row
MAX_MAPPED = 24  # columns offered for mapping


class FormatCard(Card):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__("Format", "How rows become conversations, and which tokens the model learns from.",
                         parent=parent)
        self._model = config_model
        self._tokenizer: Any = None
        self._map_combos: dict[str, QComboBox] = {}
        self.detect_banner = Banner()
        self.detect_banner.setObjectName("detection")
        self.body.addWidget(self.detect_banner)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        self.fields = {name: BoundField(config_model, f"data.{name}") for name in ("format", "train_on", "add_eos")}
        self.fields["template"] = BoundField(config_model, "data.template", on_edit=self._on_template_chosen)
        for col, name in enumerate(("format", "template", "train_on")):
            field = self.fields[name]
            shrinkable(field.widget)
            grid.addWidget(field.label, 0, col)
            grid.addWidget(field.widget, 1, col)
            grid.addWidget(field.error, 2, col)
            grid.setColumnStretch(col, 1)
        self.body.addLayout(grid)
        self.body.addWidget(self.fields["add_eos"].widget)  # its own line: the drop-downs keep the width
        self.body.addWidget(self.fields["add_eos"].error)
        self.template_hint = QWidget()
        self.template_hint.setObjectName("template_hint")
        hint_row = QHBoxLayout(self.template_hint)
        hint_row.setContentsMargins(0, 0, 0, 0)
        hint = muted("This model has no chat template of its own, so the rows are rendered in ChatML. A base "
                     "model can learn any format: write the one you will chat in.", role="faint")
        hint_row.addWidget(hint, 1)
        self.template_hint_button = QPushButton("Write a custom template…")
        self.template_hint_button.setProperty("flat", True)
        self.template_hint_button.clicked.connect(lambda: self.template_editor.choose_custom())
        hint_row.addWidget(self.template_hint_button)
        self.template_hint.hide()
        self.body.addWidget(self.template_hint)
        self.template_editor = TemplateEditor(config_model)
        self.body.addWidget(self.template_editor)
        self._map_title = muted("Columns → fields (change one to map your columns by hand)", role="faint")
        self.body.addWidget(self._map_title)
        self._map_grid = QGridLayout()
        self._map_grid.setHorizontalSpacing(14)
        self._map_grid.setVerticalSpacing(6)
        self.body.addLayout(self._map_grid)
        config_model.sig_config_changed.connect(self._update_template_hint)

    def set_tokenizer(self, tokenizer: Any) -> None:
        """The model's tokenizer (None until read): the editor checks with it, and a model without a chat
        template gets the hint that points to the custom template."""
        self._tokenizer = tokenizer
        self.template_editor.set_tokenizer(tokenizer)
        self._update_template_hint()

    def _on_template_chosen(self, value: str) -> None:
        if value != "custom":
            self.fields["template"].commit(value)
        elif not self.template_editor.choose_custom():
            self.fields["template"].show_config_value()

    def _update_template_hint(self, _config: Any = None) -> None:
        base = self._tokenizer is not None and not self._tokenizer.chat_template
        self.template_hint.setVisible(base and self._model.config.data.template == "auto")

    def show_detection(self, preview: Optional[Preview], template: str) -> None:
        """The detected shape and its evidence, or why none was found; ``template`` names the chat template used."""
        if preview is None:
            return
        if preview.detection is None:
            self.detect_banner.show_message(preview.detection_error, "error")
            return
        d = preview.detection
        self.detect_banner.show_message(f"{d.title}: {d.evidence}. Rendered with {template}.",
                                        "ok" if d.matched == d.sampled else "warn")

    def clear_mapping(self) -> None:
        while self._map_grid.count():
            item = self._map_grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._map_combos = {}

    def show_mapping(self, preview: Preview) -> None:
        """One drop-down per column of the preview, showing the detected (or the hand-made) mapping."""
        self.clear_mapping()
        mapping = preview.detection.column_map if preview.detection else self._model.config.data.column_map
        for i, column in enumerate(preview.columns[:MAX_MAPPED]):
            combo = QComboBox()
            for f in FIELDS:
                combo.addItem(f"→ {f}" if f else "(not used / as is)", f)
            target = mapping.get(column, column if column in FIELDS else "")
            combo.setCurrentIndex(max(0, combo.findData(target)))
            combo.activated.connect(lambda _: self._on_map_changed())
            guard_field(combo)
            shrinkable(combo)
            label = QLabel(column)
            label.setProperty("role", "field-label")
            r, c = divmod(i, MAP_COLUMNS)
            self._map_grid.addWidget(label, r * 2, c)
            self._map_grid.addWidget(combo, r * 2 + 1, c)
            self._map_combos[column] = combo
        for c in range(MAP_COLUMNS):
            self._map_grid.setColumnStretch(c, 1)
        self._map_title.setVisible(bool(preview.columns))

    def mapping_combo(self, column: str) -> Optional[QComboBox]:
        return self._map_combos.get(column)

    def _on_map_changed(self) -> None:
        mapping = {col: combo.currentData() for col, combo in self._map_combos.items()
                   if combo.currentData() and combo.currentData() != col}
        self._model.set("data.column_map", mapping)


def shrinkable(combo: QWidget) -> None:
    """A drop-down as narrow as its column allows (its list still shows whole items): the page fits 1280 px."""
    if isinstance(combo, QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(10)
    combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
