"""The mouse wheel scrolls the page; it changes a number field or a drop-down only after a click into it.

Qt's spin boxes and combo boxes take the wheel (and the focus with it) as soon as the pointer
passes over them, so scrolling a long form turned Rank 16 into 8 (issue #13). One application-wide
filter makes every such field take the focus only by click or Tab, and hands the wheel on to the
page (the scroll area behind the field) while the field does not have the focus.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox

_GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        kind = event.type()
        if kind == QEvent.Type.Wheel:
            if isinstance(watched, _GUARDED) and not watched.hasFocus():
                event.ignore()  # ignored + filtered: QApplication offers the wheel to the parents, up to the scroll area
                return True
        elif kind == QEvent.Type.Polish and isinstance(watched, _GUARDED):
            watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: hovering + wheel must not select it
        return False


def install_wheel_guard(app: QApplication) -> WheelGuard:
    """Install the guard once per application (later calls return the same one)."""
    guard = app.findChild(WheelGuard, "studio-wheel-guard")
    if guard is None:
        guard = WheelGuard(app)
        guard.setObjectName("studio-wheel-guard")
        app.installEventFilter(guard)
    return guard
