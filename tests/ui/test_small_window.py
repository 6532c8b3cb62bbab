"""At 1280x800 every page fits its width: nothing is cut off at the right edge (the pages scroll only down).

Found walking the app at 1280x800 for issue #13: the Data page needed 1175 px (its drop-downs sized
to their longest entry) and the Method page's forms 771 px beside the memory panel.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QScrollArea


@pytest.fixture
def themed():
    """The studio's own style sheet and font (its paddings decide the widths); the app's look is put back after."""
    from studio.ui.theme import apply_theme

    app = QApplication.instance()
    saved = (app.style().name(), app.palette(), app.font(), app.styleSheet(), app.windowIcon())
    apply_theme(app)
    yield
    style, palette, font, sheet, window_icon = saved
    app.setStyleSheet(sheet)
    app.setStyle(style)
    app.setPalette(palette)
    app.setFont(font)
    app.setWindowIcon(window_icon)


def test_every_page_fits_the_width_of_a_1280_window(qtbot, window, themed):
    w = window(build_all=True)
    w.resize(1280, 800)
    w.show()
    qtbot.waitUntil(lambda: w.pages["data"].preview is not None, timeout=20000)  # its column mapping is drawn then
    too_wide = []
    for key in w.page_keys():
        w.navigate(key)
        qtbot.wait(50)
        for area in w.pages[key].findChildren(QScrollArea) + [w._holders[key]]:
            if area.widget() is None or area.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff:
                continue
            need, have = area.widget().minimumSizeHint().width(), area.viewport().width()
            if need > have:
                too_wide.append(f"{key}: {need} px in {have}")
    assert too_wide == []
