"""The message box under the conversation: one question for both sides, Send, Stop and New chat.

Enter sends, Shift+Enter starts a new line, Escape stops the answers; the box grows with its text
up to a few lines. ``set_busy`` swaps Send for Stop while answers stream; ``set_blocked`` says why
nothing can be sent yet (no model loaded, a template to fix) right where the user types.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from studio.ui.theme import icon

MAX_LINES = 6


class MessageEdit(QPlainTextEdit):
    sig_send_requested = Signal()
    sig_stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("chat_input")
        self.setTabChangesFocus(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.document().contentsChanged.connect(self._fit)
        self._fit()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier):
            self.sig_send_requested.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.sig_stop_requested.emit()
            return
        super().keyPressEvent(event)

    def _fit(self) -> None:
        lines = min(MAX_LINES, max(1, self.document().lineCount()))
        margins = self.contentsMargins()
        height = lines * self.fontMetrics().lineSpacing() + 2 * int(self.document().documentMargin()) \
            + margins.top() + margins.bottom() + 10
        self.setFixedHeight(max(height, 42))


class Composer(QWidget):
    sig_send_requested = Signal(str)
    sig_stop_requested = Signal()
    sig_new_chat_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.edit = MessageEdit()
        self.edit.setPlaceholderText("Ask both models the same question…")
        self.edit.sig_send_requested.connect(self._on_send)
        self.edit.sig_stop_requested.connect(self.sig_stop_requested)
        row.addWidget(self.edit, 1)
        self.stop_button = QPushButton("  Stop")
        self.stop_button.setObjectName("chat_stop_button")
        self.stop_button.setIcon(icon("stop", "#ffb3b3"))
        self.stop_button.setProperty("danger", True)
        self.stop_button.setToolTip("Stop the answers (Esc); what was written so far stays.")
        self.stop_button.clicked.connect(self.sig_stop_requested)
        self.stop_button.hide()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("chat_send_button")
        self.send_button.setProperty("primary", True)
        self.send_button.setMinimumWidth(92)
        self.send_button.clicked.connect(self._on_send)
        for b in (self.stop_button, self.send_button):
            b.setMinimumHeight(40)
            row.addWidget(b, 0, Qt.AlignmentFlag.AlignBottom)
        lay.addLayout(row)
        foot = QHBoxLayout()
        self.hint = QLabel("Enter sends · Shift+Enter for a new line · Esc stops")
        self.hint.setProperty("role", "faint")
        self.hint.setWordWrap(True)
        foot.addWidget(self.hint, 1)
        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("chat_new_button")
        self.new_button.setProperty("flat", True)
        self.new_button.setToolTip("Forget this conversation and start again (the model stays loaded).")
        self.new_button.clicked.connect(self.sig_new_chat_requested)
        foot.addWidget(self.new_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addLayout(foot)
        self._busy = False
        self._blocked = ""

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.stop_button.setVisible(busy)
        self.stop_button.setEnabled(busy)
        self._update()

    def set_blocked(self, reason: str) -> None:
        """Why nothing can be sent now ("" when it can)."""
        self._blocked = reason
        self._update()

    def _update(self) -> None:
        self.send_button.setEnabled(not self._busy and not self._blocked)
        self.send_button.setToolTip(self._blocked or "Send to both sides (Enter)")
        self.hint.setText(self._blocked or "Enter sends · Shift+Enter for a new line · Esc stops")
        self.hint.setProperty("role", "warn-text" if self._blocked else "faint")
        self.hint.style().unpolish(self.hint)
        self.hint.style().polish(self.hint)

    def _on_send(self) -> None:
        text = self.edit.toPlainText().strip()
        if not text or self._busy or self._blocked:
            return
        self.edit.clear()
        self.sig_send_requested.emit(text)
