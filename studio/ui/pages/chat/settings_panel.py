"""The chat's settings beside the conversation: system prompt, chat template, sampling.

The sampling editors are the generated ones (studio.ui.widgets.config_form.make_editor) over
studio.core.chat.Sampling, so ranges, titles and help have one definition; the layout is this
page's own. The template is "as trained" by default; another named one, or a Jinja template typed
in the editor (checked as you type by studio.core.data.render.check_template, the check training's
renderer uses), applies from the next question. "What the model reads" shows the exact prompt of
the next question, rendered by render_prompt: the code the worker, training and the Data page share.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import ValidationError
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from studio.core.chat import Sampling
from studio.core.config import describe_validation_error
from studio.ui.widgets.card import muted, section_label
from studio.ui.widgets.config_form import make_editor, show_quietly

CUSTOM = "custom"
TEMPLATE_CHOICES = (("auto", "As trained"), ("chatml", "ChatML"), ("alpaca", "Alpaca"), ("llama3", "Llama 3"),
                    (CUSTOM, "Custom Jinja template…"))
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed")
SAMPLED_ONLY = ("temperature", "top_p", "top_k")  # greedy decoding ignores these
CHECK_DELAY_MS = 250


class SettingsPanel(QFrame):
    sig_settings_changed = Signal()  # anything that changes the next question's request or prompt

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("card", True)
        self.setObjectName("chat_settings")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 14, 16, 16)
        lay.setSpacing(8)
        title = QLabel("Settings")
        title.setProperty("role", "card-title")
        lay.addWidget(title)

        lay.addWidget(section_label("Conversation"))
        self.history_box = QCheckBox("Keep the conversation (multi-turn)")
        self.history_box.setObjectName("keep_history")
        self.history_box.setChecked(True)
        self.history_box.setToolTip("On: each side reads the whole conversation it had so far. Off: every question is "
                                    "asked alone, as a model trained on single-turn examples knows them.")
        self.history_box.toggled.connect(self.sig_settings_changed)
        self.history_box.toggled.connect(lambda _on: self.refresh_prompt())
        lay.addWidget(self.history_box)
        self.system_edit = QPlainTextEdit()
        self.system_edit.setObjectName("system_prompt")
        self.system_edit.setPlaceholderText("System prompt: none (as in training). E.g. “Answer briefly.”")
        self.system_edit.setFixedHeight(54)
        self.system_edit.textChanged.connect(self.sig_settings_changed)
        lay.addWidget(self.system_edit)

        lay.addWidget(section_label("Chat template"))
        self.template_combo = QComboBox()
        self.template_combo.setObjectName("template_combo")
        self.template_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.template_combo.setMinimumContentsLength(12)
        for value, label in TEMPLATE_CHOICES:
            self.template_combo.addItem(label, value)
        self.template_combo.currentIndexChanged.connect(self._on_template_changed)
        lay.addWidget(self.template_combo)
        self.template_note = muted("", role="faint")
        lay.addWidget(self.template_note)
        self.jinja_edit = QPlainTextEdit()
        self.jinja_edit.setObjectName("jinja_edit")
        self.jinja_edit.setProperty("mono", True)
        self.jinja_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.jinja_edit.setMinimumHeight(130)
        self.jinja_edit.setPlaceholderText("{% for message in messages %}…{% endfor %}")
        self.jinja_edit.textChanged.connect(self._on_jinja_edited)
        self.jinja_edit.hide()
        lay.addWidget(self.jinja_edit)
        self.jinja_status = QLabel()
        self.jinja_status.setWordWrap(True)
        self.jinja_status.hide()
        lay.addWidget(self.jinja_status)
        self.prompt_button = QPushButton("Show what the model reads")
        self.prompt_button.setObjectName("prompt_button")
        self.prompt_button.setProperty("flat", True)
        self.prompt_button.setCheckable(True)
        self.prompt_button.toggled.connect(self._on_prompt_toggled)
        lay.addWidget(self.prompt_button)
        self.prompt_view = QPlainTextEdit()
        self.prompt_view.setObjectName("prompt_view")
        self.prompt_view.setReadOnly(True)
        self.prompt_view.setProperty("mono", True)
        self.prompt_view.setMinimumHeight(120)
        self.prompt_view.hide()
        lay.addWidget(self.prompt_view)

        lay.addWidget(section_label("Sampling"))
        self._editors: dict[str, Any] = {}
        self._labels: dict[str, QLabel] = {}
        self._values: dict[str, Any] = Sampling().model_dump()
        greedy = make_editor(Sampling.model_fields["greedy"], text="Greedy: always the likeliest token")
        greedy.widget.setObjectName("greedy")
        greedy.widget.setToolTip(Sampling.model_fields["greedy"].description)
        greedy.connect(lambda v: self._on_sampling_edited("greedy", v))
        self._editors["greedy"] = greedy
        lay.addWidget(greedy.widget)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(6)
        grid.setColumnStretch(1, 1)
        for row, name in enumerate(SAMPLING_FIELDS):
            info = Sampling.model_fields[name]
            editor = make_editor(info)
            editor.widget.setObjectName(name)
            editor.widget.setToolTip(info.description)
            editor.widget.setMinimumWidth(90)  # a spin box's own minimum fits its whole range: far too wide here
            editor.connect(lambda v, n=name: self._on_sampling_edited(n, v))
            label = QLabel(info.title)
            label.setProperty("role", "field-label")
            label.setToolTip(info.description)
            grid.addWidget(label, row, 0)
            grid.addWidget(editor.widget, row, 1)
            self._editors[name] = editor
            self._labels[name] = label
        lay.addLayout(grid)
        self.sampling_error = QLabel()
        self.sampling_error.setProperty("role", "field-error")
        self.sampling_error.setWordWrap(True)
        self.sampling_error.hide()
        lay.addWidget(self.sampling_error)
        lay.addStretch(1)
        for name, editor in self._editors.items():
            show_quietly(editor, self._values[name])
        self._apply_greedy()

        self._trained = ("", "")  # (how the trained template is called, its Jinja text)
        self._tokenizer: Any = None
        self._jinja_problem = ""
        self._check_timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self._check_jinja)
        self._prompt_source = None  # () -> (conversation, train_on) of the next question, set by the page
        self._prompt_template_auto = "auto"  # what "As trained" renders with: the run's template (name or Jinja)
        self._update_template_note()

    # ---- what the page reads ------------------------------------------------------------------
    def keep_history(self) -> bool:
        return self.history_box.isChecked()

    def system(self) -> str:
        return self.system_edit.toPlainText().strip()

    def template(self) -> str:
        """auto, a template name, or the custom Jinja text."""
        value = self.template_combo.currentData()
        return self.jinja_edit.toPlainText() if value == CUSTOM else value

    def sampling(self) -> Optional[Sampling]:
        try:
            return Sampling(**self._values)
        except ValidationError:
            return None

    def problem(self) -> str:
        """Why the next question cannot be sent with these settings ("" when it can)."""
        if self.template_combo.currentData() == CUSTOM and self._jinja_problem:
            return f"Fix the custom chat template first: {self._jinja_problem}"
        if self.sampling() is None:
            return "Fix the sampling settings first."
        return ""

    @property
    def trained_title(self) -> str:
        return self._trained[0]

    @property
    def trained_jinja(self) -> str:
        return self._trained[1]

    # ---- what the page tells it ---------------------------------------------------------------
    def set_trained_template(self, title: str, jinja: str) -> None:
        """How the loaded model's own template is called (shown for "As trained") and its Jinja text (the
        custom editor's starting point)."""
        self._trained = (title, jinja)
        self.template_combo.setItemText(0, f"As trained: {title}" if title else "As trained")
        if jinja and self.template_combo.currentData() == CUSTOM and not self.jinja_edit.toPlainText().strip():
            self.jinja_edit.setPlainText(jinja)  # "Custom" was chosen before the run's template was read
        self._update_template_note()

    def set_tokenizer(self, tokenizer: Any) -> None:
        """The loaded model's tokenizer (no torch: studio.core.data.tokenizer), for checks and the prompt view."""
        self._tokenizer = tokenizer
        if self.template_combo.currentData() == CUSTOM:
            self._check_timer.start()
        self.refresh_prompt()

    def set_prompt_source(self, source) -> None:
        self._prompt_source = source

    def set_template(self, value: str) -> None:
        """Choose a named template, or a custom Jinja text (tests and the screenshots use it)."""
        names = [v for v, _ in TEMPLATE_CHOICES]
        if value in names:
            self.template_combo.setCurrentIndex(names.index(value))
        else:
            self.template_combo.setCurrentIndex(names.index(CUSTOM))
            self.jinja_edit.setPlainText(value)
            self._check_jinja()

    # ---- reactions --------------------------------------------------------------------------
    def _on_template_changed(self, _index: int) -> None:
        custom = self.template_combo.currentData() == CUSTOM
        if custom and not self.jinja_edit.toPlainText().strip() and self._trained[1]:
            self.jinja_edit.setPlainText(self._trained[1])
        self.jinja_edit.setVisible(custom)
        self.jinja_status.setVisible(custom)
        if custom:
            self._check_jinja()
        self._update_template_note()
        self.sig_settings_changed.emit()
        self.refresh_prompt()

    def _update_template_note(self) -> None:
        value = self.template_combo.currentData()
        trained = f"{self._trained[0]} template" if self._trained[0] else "its own template"
        if self._trained[0] == "plain text":
            note = "This run trained on plain text: the question is continued as text, without a chat template."
        elif value == "auto":
            note = ""  # as trained: nothing to warn about (the tooltip says how)
        else:
            note = f"The run trained with {trained}; another template changes what the model reads."
        self.template_note.setText(note)
        self.template_note.setVisible(bool(note))
        self.template_combo.setToolTip("The template the run trained with, rendered by the same code as training "
                                       "(studio.core.data.render), or another one for this chat.")

    def _on_jinja_edited(self) -> None:
        self._check_timer.start()

    def _check_jinja(self) -> None:
        from studio.core.data.render import check_template

        problem = check_template(self.jinja_edit.toPlainText(), self._tokenizer)
        self._jinja_problem = problem
        self.jinja_status.setText(f"✗ {problem}" if problem else "✓ Renders every turn and marks where answers go.")
        self.jinja_status.setProperty("role", "field-error" if problem else "ok-text")
        self.jinja_status.style().unpolish(self.jinja_status)
        self.jinja_status.style().polish(self.jinja_status)
        self.sig_settings_changed.emit()
        self.refresh_prompt()

    def _on_sampling_edited(self, name: str, value: Any) -> None:
        self._values[name] = value
        try:
            Sampling(**self._values)
            message = ""
        except ValidationError as e:
            message = describe_validation_error(e)
        self.sampling_error.setText(message)
        self.sampling_error.setVisible(bool(message))
        if name == "greedy":
            self._apply_greedy()
        self.sig_settings_changed.emit()

    def _apply_greedy(self) -> None:
        greedy = bool(self._values.get("greedy"))
        for name in SAMPLED_ONLY:
            self._editors[name].widget.setEnabled(not greedy)
            self._labels[name].setEnabled(not greedy)

    def _on_prompt_toggled(self, on: bool) -> None:
        self.prompt_view.setVisible(on)
        self.prompt_button.setText("Hide what the model reads" if on else "Show what the model reads")
        self.refresh_prompt()

    def refresh_prompt(self) -> None:
        """Render the next question's prompt exactly as the worker will (when the view is open)."""
        if not self.prompt_view.isVisible():
            return
        if self._tokenizer is None or self._prompt_source is None:
            self.prompt_view.setPlainText("Load a model to see the prompt its tokenizer renders.")
            return
        from studio.core.chat import with_system
        from studio.core.data.errors import DataError
        from studio.core.data.render import render_prompt

        conv, train_on = self._prompt_source()
        template = self.template()
        if template == "auto":
            template = self._prompt_template_auto
        try:
            text = render_prompt(with_system(conv, self.system()), self._tokenizer, template, train_on).text
        except (DataError, ValueError) as e:
            text = f"(cannot render: {e})"
        self.prompt_view.setPlainText(text)

    def set_trained_template_setting(self, setting: str) -> None:
        """The run's template (a name or its custom Jinja text), which "As trained" renders with."""
        self._prompt_template_auto = setting or "auto"
        self.refresh_prompt()

    def set_sampling_value(self, name: str, value: Any) -> None:
        """Set one sampling field as if typed (tests and the screenshots use it)."""
        show_quietly(self._editors[name], value)
        self._on_sampling_edited(name, value)
