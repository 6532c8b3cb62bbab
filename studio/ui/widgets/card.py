"""Building blocks of every page: cards with a title, banners, badges, metric tiles, scroll pages."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from studio.core.runs import RunState
from studio.ui.theme import repolish


class Card(QFrame):
    """A rounded panel with an optional title row; put content into ``card.body``."""

    def __init__(self, title: str = "", subtitle: str = "", accent: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("card", True)
        self.setProperty("accent", accent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(18, 16, 18, 18)
        outer.setSpacing(12)
        self.header = QHBoxLayout()
        self.header.setSpacing(8)
        # Parented at once: setVisible(True) on a parentless label would show it as a window.
        self.title_label = QLabel(title, self)
        self.title_label.setProperty("role", "card-title")
        self.subtitle_label = QLabel(subtitle, self)
        self.subtitle_label.setProperty("role", "card-subtitle")
        self.subtitle_label.setWordWrap(True)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(self.title_label)
        titles.addWidget(self.subtitle_label)
        self.subtitle_label.setVisible(bool(subtitle))
        self.header.addLayout(titles, 1)
        if title:
            outer.addLayout(self.header)
        self.body = QVBoxLayout()
        self.body.setSpacing(10)
        outer.addLayout(self.body)

    def add_header_widget(self, widget: QWidget) -> None:
        self.header.addWidget(widget, 0, Qt.AlignmentFlag.AlignTop)

    def set_subtitle(self, text: str) -> None:
        self.subtitle_label.setText(text)
        self.subtitle_label.setVisible(bool(text))


class Banner(QLabel):
    """A one-line (or wrapped) message with a tone: info, ok, warn, error. Hidden when empty."""

    def __init__(self, text: str = "", tone: str = "info", parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("role", "banner")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_message(text, tone)

    def show_message(self, text: str, tone: str = "info") -> None:
        self.setText(text)
        self.setProperty("tone", tone)
        repolish(self)
        if text and self.parentWidget() is None:
            return  # not yet in a page: it shows with its parent (setVisible(True) would make it a window)
        self.setVisible(bool(text))

    @property
    def tone(self) -> str:
        return self.property("tone") or ""


STATE_TONES = {RunState.COMPLETED: "ok", RunState.RUNNING: "run", RunState.STOPPING: "run", RunState.CREATED: "",
               RunState.STOPPED: "warn", RunState.FAILED: "error", RunState.KILLED: "error"}


class Badge(QLabel):
    def __init__(self, text: str = "", tone: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("role", "badge")
        self.set(text, tone)

    def set(self, text: str, tone: str = "") -> None:
        self.setText(text)
        self.setProperty("tone", tone)
        repolish(self)

    def set_state(self, state: str) -> None:
        self.set(state.upper(), STATE_TONES.get(state, ""))


class MetricTile(QFrame):
    """A small labelled number (tokens/s, step, ETA...)."""

    def __init__(self, label: str, value: str = "—", parent: QWidget | None = None):
        super().__init__(parent)
        self.setProperty("card", True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 12)
        lay.setSpacing(2)
        self.label = QLabel(label.upper())
        self.label.setProperty("role", "metric-label")
        self.value = QLabel(value)
        self.value.setProperty("role", "metric-value")
        self.detail = QLabel("")
        self.detail.setProperty("role", "faint")
        lay.addWidget(self.label)
        lay.addWidget(self.value)
        lay.addWidget(self.detail)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set(self, value: str, detail: str | None = None) -> None:
        self.value.setText(value)
        if detail is not None:
            self.detail.setText(detail)


def section_label(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setProperty("role", "section")
    return label


def muted(text: str, wrap: bool = True, role: str = "muted") -> QLabel:
    label = QLabel(text)
    label.setProperty("role", role)
    label.setWordWrap(wrap)
    return label


def scroll_page(content: QWidget, max_width: int = 1240) -> QScrollArea:
    """Wrap a page's content so small windows scroll vertically; wide windows keep lines readable."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    content.setMaximumWidth(max_width)
    row.addWidget(content)
    area.setWidget(holder)
    return area


def page_layout(widget: QWidget) -> QVBoxLayout:
    lay = QVBoxLayout(widget)
    lay.setContentsMargins(28, 22, 28, 28)
    lay.setSpacing(16)
    return lay


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def fmt_params(n: int | None) -> str:
    if not n:
        return "—"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            v = n / div
            return f"{v:.1f}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return str(n)


def fmt_duration(s: float | None) -> str:
    if s is None or s != s or s < 0:
        return "—"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {sec:02d}s"
    return f"{sec}s"
