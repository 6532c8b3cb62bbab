"""The mouse wheel over a number field scrolls the page instead of changing the value (issue #13.7).

Eight notches over Rank while scrolling the Method page turned 16 into 8.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox


def _wheel(widget, notches: int) -> bool:
    """Turn the wheel over the middle of ``widget``; returns whether the widget kept the event."""
    centre = QPointF(widget.rect().center())
    accepted = True
    for _ in range(abs(notches)):
        event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(0, 0),
                            QPoint(0, -120 if notches < 0 else 120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)
        accepted = accepted and event.isAccepted()
    return accepted


def test_scrolling_over_rank_leaves_it_alone_until_clicked(qtbot, window):
    w = window()
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=3000)
    w.navigate("method")
    rank = w.pages["method"].method_form.editor("r")
    assert rank.value() == 16
    assert not _wheel(rank, -8)  # handed on to the page behind it
    assert rank.value() == 16 and w.config_model.config.method.r == 16
    assert rank.focusPolicy() == Qt.FocusPolicy.StrongFocus  # hovering with the wheel does not focus it either
    qtbot.mouseClick(rank.lineEdit(), Qt.MouseButton.LeftButton)
    assert rank.hasFocus()
    _wheel(rank, -2)  # once clicked into, the wheel is the field's
    assert rank.value() == 14


def test_every_number_field_and_drop_down_on_every_page_is_guarded(qtbot, window):
    w = window(build_all=True)
    w.show()
    fields = [f for key in w.pages for cls in (QAbstractSpinBox, QComboBox) for f in w.pages[key].findChildren(cls)]
    assert len(fields) > 20
    for field in fields:
        field.ensurePolished()
    assert [f.objectName() or type(f).__name__ for f in fields
            if f.focusPolicy() != Qt.FocusPolicy.StrongFocus] == []
    combo = w.pages["method"].findChild(QComboBox)
    before = combo.currentIndex()
    assert not _wheel(combo, -3)
    assert combo.currentIndex() == before
