"""The mouse wheel scrolls the page; it changes a number field or a drop-down only after a click into it.

Qt's spin boxes and combo boxes take the wheel (and the focus with it) as soon as the pointer
passes over them, so scrolling a long form turned Rank 16 into 8 (issue #13). ``guard_fields(root)``
gives every such field under ``root`` the focus only by click or Tab and an event filter that hands
the wheel on to the page (the scroll area behind the field) while the field does not have the focus.

The filter sits on the fields themselves, not on the application: an application-wide Python event
filter sees every event of every object, and PySide6 crashed wrapping objects that were being
destroyed (a segfault while a worker's output was being delivered).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QWidget

_GUARDED = (QAbstractSpinBox, QComboBox)
_MARK = "studioWheelGuarded"


class WheelGuard(QObject):
    """Event filter of guarded fields: a wheel over an unfocused field goes to its parents."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # ignored + filtered: QApplication offers the wheel to the parents, up to the scroll area
            return True
        return False


def _guard() -> WheelGuard:
    app = QApplication.instance()
    guard = app.findChild(WheelGuard, "studio-wheel-guard")
    if guard is None:
        guard = WheelGuard(app)
        guard.setObjectName("studio-wheel-guard")
    return guard


def guard_field(field: QWidget) -> None:
    """Guard one spin box or combo box (again: harmless)."""
    if field.property(_MARK):
        return
    field.setProperty(_MARK, True)
    field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # not WheelFocus: hovering + wheel must not select it
    field.installEventFilter(_guard())


def guard_fields(root: QWidget) -> int:
    """Guard every spin box and combo box under ``root`` (and ``root`` itself); returns how many are guarded."""
    fields = [w for cls in _GUARDED for w in root.findChildren(cls)]
    if isinstance(root, _GUARDED):
        fields.append(root)
    for field in fields:
        guard_field(field)
    return len(fields)
