"""The side-by-side conversation: each question once across the page, the two answers under it, aligned.

Two free-running columns drift apart as soon as one answer is longer than the other; here every
exchange is a row (the question, then Base | Tuned), so the answers to the same question always sit
side by side. Bubbles read the core Transcript (studio.core.chat_transcript); ``refresh`` repaints
only replies whose revision changed (the page calls it from a timer, so token events never repaint
one by one) and follows the newest text when the view was at the bottom.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QTextEdit,
                               QVBoxLayout, QWidget)

from studio.core.chat_transcript import STREAMING, WAITING, Exchange, Reply, Transcript
from studio.ui.theme import icon, repolish

SIDE_TITLES = {"base": "Base", "tuned": "Tuned"}
STOP_REASONS = {"end": ("Finished", "ok"), "length": ("Max tokens", "warn"), "stopped": ("Stopped", "warn"),
                "error": ("Failed", "error")}
STOP_TIPS = {"end": "The model ended its answer (end of turn or end of text).",
             "length": "The answer reached Max new tokens (Settings) before the model ended it.",
             "stopped": "You stopped this answer; what it wrote so far stays.", "error": "This answer failed."}
USER_MAX_WIDTH = 560
FOLLOW_SLACK_PX = 48  # this close to the bottom counts as "at the bottom": new text keeps the view there


def reply_stats(reply: Reply) -> str:
    """The numbers under a finished answer: tokens, first token, speed, why it ended."""
    if not reply.finished or reply.stop_reason == "error":
        return ""
    parts = [f"{reply.tokens:,} token{'s' if reply.tokens != 1 else ''}"]
    if reply.tokens:
        parts.append(f"first token {reply.first_token_s * 1000:,.0f} ms")
    if reply.tokens > 1:
        parts.append(f"{reply.tokens_per_s:,.1f} tok/s")
    return " · ".join(parts)


class AnswerText(QTextEdit):
    """Read-only text as tall as its content; breaks inside long words (a base model's noise has no spaces)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.document().setDocumentMargin(0)
        self.setProperty("role", "chat-text")
        self._shown = ""
        self.document().contentsChanged.connect(self._fit)

    def set_text(self, text: str) -> None:
        """Show ``text``; a streamed answer only grows, so only the new part is appended."""
        if text == self._shown:
            return
        if self._shown and text.startswith(self._shown):
            cursor = self.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            cursor.insertText(text[len(self._shown):])
        else:
            self.setPlainText(text)
        self._shown = text

    def text(self) -> str:
        return self._shown

    def _fit(self) -> None:
        self.document().setTextWidth(self.viewport().width())
        height = int(self.document().size().height()) + 2
        if self.height() != height:
            self.setFixedHeight(max(height, self.fontMetrics().height()))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit()


class ReplyBubble(QFrame):
    """One side's answer: its text as it streams, then the numbers, or the error in place."""

    def __init__(self, side: str, reply: Optional[Reply], parent: QWidget | None = None):
        super().__init__(parent)
        self.side = side
        self.reply = reply
        self._painted = -1
        self.setProperty("role", "chat-bubble")
        self.setProperty("side", side)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(6)
        self.body = AnswerText()
        self.status = QLabel()
        self.status.setProperty("role", "chat-status")
        self.status.setWordWrap(True)
        self.error = QLabel()
        self.error.setProperty("role", "chat-error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        self.stats = QLabel()
        self.stats.setProperty("role", "chat-stats")
        self.stats.setWordWrap(True)
        lay.addWidget(self.body)
        lay.addWidget(self.error)
        footer = QHBoxLayout()
        footer.setSpacing(8)
        footer.addWidget(self.status, 0, Qt.AlignmentFlag.AlignTop)
        footer.addWidget(self.stats, 1, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(footer)
        if reply is None:  # this side was not asked this question
            self.setProperty("tone", "off")
            self.body.hide()
            self.stats.hide()
            self.status.setText("Not asked")
        self.repaint_reply(first_waiting=False)

    def repaint_reply(self, first_waiting: bool) -> bool:
        """Show the reply's current state; False when nothing changed since the last time."""
        reply = self.reply
        if reply is None or (reply.revision == self._painted and reply.state != WAITING):
            return False
        self._painted = reply.revision
        empty = reply.finished and not reply.text and not reply.failed
        self.body.set_text(reply.text or ("(an empty answer: the model ended its turn at once)" if empty else ""))
        self.body.setVisible(bool(reply.text) or empty)
        self.body.setProperty("tone", "faint" if empty else "")
        repolish(self.body)
        tone = ""
        if reply.state == WAITING:
            status = "Reading the question…" if first_waiting else "Waiting for the other side…"
            tone = "live"
        elif reply.state == STREAMING:
            status, tone = "● Streaming", "live"
        else:
            status, tone = STOP_REASONS.get(reply.stop_reason, (reply.stop_reason, ""))
        self.status.setText(status)
        self.status.setToolTip(STOP_TIPS.get(reply.stop_reason, "") if reply.finished else "")
        self.status.setProperty("tone", tone)
        repolish(self.status)
        stats = reply_stats(reply)
        if reply.adapter and reply.side == "tuned":
            stats = f"{stats} · {reply.adapter}" if stats else reply.adapter
        self.stats.setText(stats)
        if reply.error:
            title = "Out of memory. " if reply.error_kind == "oom" else ""
            self.error.setText(title + reply.error)
        self.error.setVisible(bool(reply.error))
        self.setProperty("tone", "error" if reply.failed else "")
        repolish(self)
        return True


class ExchangeRow(QWidget):
    """The question across the page, the answers side by side under it."""

    def __init__(self, exchange: Exchange, parent: QWidget | None = None):
        super().__init__(parent)
        self.exchange = exchange
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        question = QHBoxLayout()
        question.addStretch(1)
        self.question = QLabel(exchange.user)
        self.question.setProperty("role", "chat-user")
        self.question.setTextFormat(Qt.TextFormat.PlainText)
        self.question.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # One line when it fits (as wide as the text), else wrapped at USER_MAX_WIDTH.
        longest = max((self.question.fontMetrics().horizontalAdvance(line) for line in exchange.user.splitlines()),
                      default=0)
        self.question.setWordWrap(longest + 32 > USER_MAX_WIDTH)
        self.question.setMaximumWidth(USER_MAX_WIDTH)
        if self.question.wordWrap():
            self.question.setMinimumWidth(min(USER_MAX_WIDTH, 320))
        self.question.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        question.addWidget(self.question, 0)
        lay.addLayout(question)
        answers = QHBoxLayout()
        answers.setSpacing(12)
        self.bubbles = {side: ReplyBubble(side, exchange.replies.get(side)) for side in SIDE_TITLES}
        for bubble in self.bubbles.values():
            answers.addWidget(bubble, 1, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(answers)

    def repaint_replies(self) -> bool:
        order = list(self.exchange.replies)
        first_open = next((s for s in order if not self.exchange.replies[s].finished), None)
        changed = False
        for side, bubble in self.bubbles.items():
            changed |= bubble.repaint_reply(first_waiting=side == first_open)
        return changed


class EmptyState(QWidget):
    """What an empty conversation says: what is going on, and questions from the run's data to start with."""

    sig_suggestion_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(40, 0, 40, 0)
        lay.setSpacing(8)
        self.icon = QLabel()
        self.icon.setPixmap(icon("chat", "#3a4252", 96).pixmap(44, 44))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setProperty("role", "chat-empty-title")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        self.text = QLabel()
        self.text.setProperty("role", "chat-empty")
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setWordWrap(True)
        for w in (self.icon, self.title, self.text):
            lay.addWidget(w)
        self.suggestions_label = QLabel("TRY ONE FROM THE RUN'S DATA")
        self.suggestions_label.setProperty("role", "section")
        self.suggestions_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addSpacing(6)
        lay.addWidget(self.suggestions_label, 0, Qt.AlignmentFlag.AlignHCenter)
        self._buttons = QVBoxLayout()
        self._buttons.setSpacing(6)
        lay.addLayout(self._buttons)
        self.suggestion_buttons: list[QPushButton] = []

    def show_state(self, title: str, text: str, suggestions: tuple[str, ...] = ()) -> None:
        self.title.setText(title)
        self.text.setText(text)
        self.text.setVisible(bool(text))
        for b in self.suggestion_buttons:
            b.setParent(None)
            b.deleteLater()
        self.suggestion_buttons = []
        for question in suggestions:
            b = QPushButton(question if len(question) <= 90 else question[:88].rstrip() + "…")
            b.setProperty("role", "chat-suggestion")
            b.setToolTip(question)
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.clicked.connect(lambda _=False, q=question: self.sig_suggestion_clicked.emit(q))
            self._buttons.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
            self.suggestion_buttons.append(b)
        self.suggestions_label.setVisible(bool(suggestions))


class ConversationView(QScrollArea):
    """Every exchange of the transcript, newest last; an empty-state hint when there is none."""

    def __init__(self, transcript: Transcript, parent: QWidget | None = None):
        super().__init__(parent)
        self.transcript = transcript
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._content = QWidget()
        self._content.setObjectName("ChatContent")
        self._rows_layout = QVBoxLayout(self._content)
        self._rows_layout.setContentsMargins(4, 8, 10, 8)
        self._rows_layout.setSpacing(22)
        self.empty = EmptyState()
        self._rows_layout.addStretch(1)
        self._rows_layout.addWidget(self.empty)
        self._rows_layout.addStretch(2)
        self.setWidget(self._content)
        self.rows: list[ExchangeRow] = []
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._on_scroll_range_changed)
        self.verticalScrollBar().valueChanged.connect(self._on_scroll_value_changed)

    def set_empty_text(self, title: str, text: str = "", suggestions: tuple[str, ...] = ()) -> None:
        self.empty.show_state(title, text, suggestions)

    def refresh(self) -> None:
        """Add rows for new exchanges, drop rows of cleared ones, repaint the replies that changed."""
        wanted = self.transcript.exchanges
        if [r.exchange for r in self.rows] != wanted[:len(self.rows)]:  # cleared (a new chat)
            for row in self.rows:
                row.setParent(None)
                row.deleteLater()
            self.rows = []
        for exchange in wanted[len(self.rows):]:
            row = ExchangeRow(exchange)
            self._rows_layout.insertWidget(self._rows_layout.count() - 2, row)
            self.rows.append(row)
            self._follow = True  # a new question: show it
        for row in self.rows:
            row.repaint_replies()  # cheap for replies that did not change
        self.empty.setVisible(not self.rows)
        self._rows_layout.setStretch(0, 0 if self.rows else 1)
        self._rows_layout.setStretch(self._rows_layout.count() - 1, 1 if self.rows else 2)

    def bubble(self, index: int, side: str) -> ReplyBubble:
        return self.rows[index].bubbles[side]

    def _on_scroll_range_changed(self, _lo: int, hi: int) -> None:
        if self._follow:
            QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))

    def _on_scroll_value_changed(self, value: int) -> None:
        self._follow = value >= self.verticalScrollBar().maximum() - FOLLOW_SLACK_PX
