"""The look: the dark style sheet, the drawn SVG icons, and the colours plots share with it."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from studio.core.paths import resources_dir

COLORS = {
    "window": "#0e1016", "surface": "#141821", "card": "#161a23", "line": "#222835", "grid": "#1d2230",
    "text": "#e7e9ee", "muted": "#8e97a8", "faint": "#5f6878",
    "accent": "#7c6cff", "mint": "#34d1a0", "amber": "#f0b429", "red": "#ff6b6b", "sky": "#5aa9ff",
}

# Preferred UI fonts, best first; the first one installed wins.
FONT_FAMILIES = ["Inter", "Inter Variable", "Segoe UI", "SF Pro Text", "Cantarell", "Noto Sans", "Ubuntu", "DejaVu Sans"]


def theme_dir():
    return resources_dir() / "theme"


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")  # the same metrics everywhere; the style sheet does the rest
    pal = QPalette()
    for role, color in ((QPalette.ColorRole.Window, COLORS["window"]), (QPalette.ColorRole.Base, "#0f1219"),
                        (QPalette.ColorRole.AlternateBase, "#131720"), (QPalette.ColorRole.Text, COLORS["text"]),
                        (QPalette.ColorRole.WindowText, COLORS["text"]), (QPalette.ColorRole.Button, "#1f2430"),
                        (QPalette.ColorRole.ButtonText, COLORS["text"]), (QPalette.ColorRole.Highlight, "#4a3fb3"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#1f2430"),
                        (QPalette.ColorRole.ToolTipText, COLORS["text"]), (QPalette.ColorRole.PlaceholderText, COLORS["faint"])):
        pal.setColor(role, QColor(color))
    app.setPalette(pal)
    font = QFont()
    font.setFamilies(FONT_FAMILIES)
    font.setPixelSize(13)
    try:  # Inter's contextual alternates turn "4x6" in paths into "4×6"; paths must read as typed
        font.setFeature(QFont.Tag("calt"), 0)
    except (AttributeError, TypeError):  # Qt < 6.7
        pass
    app.setFont(font)
    qss = (theme_dir() / "dark.qss").read_text(encoding="utf-8")
    app.setStyleSheet(qss.replace("@ICONS@", (theme_dir() / "icons").as_posix()))
    app.setWindowIcon(icon("logo", None))


@lru_cache(maxsize=128)
def icon(name: str, color: str | None = "#aab2c0", size: int = 40) -> QIcon:
    """A drawn icon, recoloured (the SVGs are drawn in one grey), as a QIcon."""
    path = theme_dir() / "icons" / f"{name}.svg"
    if not path.exists():
        return QIcon()
    svg = path.read_text(encoding="utf-8")
    if color:
        svg = svg.replace("#c9cfdb", color)
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(svg.encode()))
    pix = QPixmap(QSize(size, size))
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    renderer.render(painter)
    painter.end()
    return QIcon(pix)


def nav_icon(name: str) -> QIcon:
    """Normal grey, white when the nav button is checked."""
    ic = QIcon()
    for mode, state, color in ((QIcon.Mode.Normal, QIcon.State.Off, "#8e97a8"), (QIcon.Mode.Normal, QIcon.State.On, "#b9b0ff"),
                               (QIcon.Mode.Active, QIcon.State.Off, "#e7e9ee")):
        ic.addPixmap(icon(name, color).pixmap(40, 40), mode, state)
    return ic


def repolish(widget: QWidget) -> None:
    """Re-apply the style sheet after a dynamic property (tone, invalid...) changed."""
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()
