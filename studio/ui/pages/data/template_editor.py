"""TemplateEditor: the run's custom chat template (data.chat_template), a Jinja text checked as you type.

Shown while the Chat template is "Custom…". Each pause in typing runs studio.core.data.render.check_template
(the check the config itself applies) with the model's tokenizer; a template that can train is written into
the ConfigModel, so the preview, the statistics, training, chat and export all use it, and one that cannot
is the field's rejected edit: its reason shown here and by Train, the config keeping its last good template. "Start from" fills the editor with the model's
own template or a named one, written so that, unchanged, it trains exactly as that one does.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QSignalBlocker, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from studio.core.config import RunConfig
from studio.ui.config_model import ConfigModel

PATH = "data.chat_template"
CHECK_DELAY_MS = 300
OWN = "own"
STARTS = ((OWN, "The model's own template"), ("chatml", "ChatML"), ("llama3", "Llama 3"), ("alpaca", "Alpaca"))
OK_TEXT = "✓ Renders every turn and marks where answers go; the preview below shows the rows with it."


class TemplateEditor(QWidget):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("template_editor")
        self._model = config_model
        self._tokenizer: Any = None
        self._shown = config_model.config.data.chat_template  # the config's text the editor last showed
        self._custom = False  # whether the run's template was 'custom' at the last config change
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.setSpacing(6)
        bar = QHBoxLayout()
        title = QLabel("Custom chat template (Jinja, as a tokenizer's chat_template)")
        title.setProperty("role", "field-label")
        bar.addWidget(title, 1)
        self.start_combo = QComboBox()
        self.start_combo.setObjectName("template_start")
        self.start_combo.setToolTip("Replace the text with a template to start from. Unchanged, each trains exactly "
                                    "as that template does.")
        self.start_combo.addItem("Start from…", None)
        for value, label in STARTS:
            self.start_combo.addItem(label, value)
        self.start_combo.activated.connect(self._on_start_activated)
        bar.addWidget(self.start_combo)
        lay.addLayout(bar)
        self.edit = QPlainTextEdit()
        self.edit.setObjectName("chat_template_edit")
        self.edit.setProperty("mono", True)
        self.edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.edit.setMinimumHeight(150)
        self.edit.setPlaceholderText("{% for message in messages %}…{% endfor %}{% if add_generation_prompt %}…"
                                     "{% endif %}")
        self.edit.setPlainText(self._shown)
        self.edit.textChanged.connect(self._on_text_edited)
        lay.addWidget(self.edit)
        self.status = QLabel()
        self.status.setObjectName("chat_template_status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self._timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check)
        config_model.sig_config_changed.connect(self._on_config_changed)
        config_model.sig_field_error.connect(self._on_field_error)
        self._update_starts()
        self._on_config_changed(config_model.config)

    # ---- what the card and the tests use ------------------------------------------------------
    def problem(self) -> str:
        return self.status.text()[2:] if self.status.property("role") == "field-error" else ""

    def set_tokenizer(self, tokenizer: Any) -> None:
        """The model's tokenizer (studio.core.data.tokenizer, no torch): its special tokens for the check, its
        own template to start from."""
        self._tokenizer = tokenizer
        self._update_starts()
        if self._model.config.data.template == "custom":
            self.check()

    def choose_custom(self) -> bool:
        """Switch the run to a custom template: the last good one, else one to start from (the model's own,
        else ChatML)."""
        data = self._model.config.data
        text = data.chat_template
        if not text.strip() or self._problem_of(text):
            text = self.starting_text(OWN if self._own_template() else "chatml")
        return self._model.update({"data.template": "custom", PATH: text})

    def starting_text(self, start: str) -> str:
        from studio.core.chat_formats import starting_template

        if start == OWN:
            return self._own_template() or ""
        return starting_template(start, self._tokenizer)

    # ---- reactions ------------------------------------------------------------------------------
    def _on_start_activated(self, index: int) -> None:
        start = self.start_combo.itemData(index)
        self.start_combo.setCurrentIndex(0)
        if start:
            self.edit.setPlainText(self.starting_text(start))
            self.check()

    def _on_text_edited(self) -> None:
        self._timer.start()

    def check(self) -> None:
        """Check the text now: one that can train becomes the run's; one that cannot is the field's rejected edit
        (the reason shown here and by Train, which will not start), the run keeping its last good template."""
        self._timer.stop()
        text = self.edit.toPlainText()
        problem = self._problem_of(text)
        data = self._model.config.data
        if data.template == "custom":
            if problem:
                self._model.reject(PATH, problem)
            elif text != data.chat_template:
                self._shown = text
                if not self._model.set(PATH, text):  # the config's own check, without the tokenizer
                    problem = self._model.errors().get(PATH, "")
            else:
                self._model.reject(PATH, "")
        self._show(problem)

    def _problem_of(self, text: str) -> str:
        from studio.core.data.render import check_template

        if not text.strip():
            return "the template is empty: write one, or start from the model's own or a named one."
        return check_template(text, self._tokenizer)

    def _show(self, problem: str) -> None:
        self.status.setText(f"✗ {problem}" if problem else OK_TEXT)
        self.status.setProperty("role", "field-error" if problem else "ok-text")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def _on_config_changed(self, config: RunConfig) -> None:
        data = config.data
        self.setVisible(data.template == "custom")
        if data.template != "custom" and PATH in self._model.errors():
            self._model.reject(PATH, "")  # a draft beside a named template is not the run's: nothing to fix
        chosen = data.template == "custom" and not self._custom  # "Custom…" chosen, or a custom config loaded
        self._custom = data.template == "custom"
        if data.chat_template != self._shown:  # changed elsewhere (a loaded config, "Custom…" chosen): show it
            self._shown = data.chat_template
            with QSignalBlocker(self.edit):
                self.edit.setPlainText(data.chat_template)
            chosen = self._custom
        if chosen:  # what the editor holds (a draft kept from before, too) is checked for the run now
            self.check()

    def _on_field_error(self, path: str, message: str) -> None:
        if path == PATH and message:
            self._show(message)

    def _own_template(self) -> Optional[str]:
        return getattr(self._tokenizer, "chat_template", None) or None

    def _update_starts(self) -> None:
        own = self.start_combo.findData(OWN)
        item = self.start_combo.model().item(own)
        has_own = bool(self._own_template())
        item.setEnabled(has_own)
        item.setText("The model's own template" if has_own or self._tokenizer is None
                     else "The model's own template (it has none)")
