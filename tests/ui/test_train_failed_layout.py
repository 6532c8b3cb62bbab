"""A failed run at the default window size and at 1280x800 (issue #13.5).

A long error with a traceback used to fill the banner, push the charts over the log panel (the
Log/Engine tabs disappeared, the splitter drew a dark band across the charts) and show the
traceback to the user. Now the banner says what happened in a few lines, the Log tab (selected)
has the traceback, and every part keeps its own space.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect

LONG = "RuntimeError: fake failure for the test"


def _rect_in_window(widget, window) -> QRect:
    return QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("size", [(1400, 900), (1280, 800)])
def test_a_failed_run_keeps_charts_tabs_and_log_apart(qtbot, window, fake_worker, size):
    fake_worker("raise")
    w = window()
    w.resize(*size)
    w.show()
    w.navigate("train")
    page = w.page("train")
    page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=15_000)
    qtbot.wait(200)  # layouts settle
    text = page.banner.text()
    assert LONG in text and "Traceback" not in text and "Last log lines" not in text and "Log tab" in text
    assert page.details_tabs.currentWidget() is page.log_view and "Traceback" in page.log_view.toPlainText()
    assert page.banner.height() < 90
    charts = _rect_in_window(page.curves, w)
    tabs = _rect_in_window(page.details_tabs, w)
    assert page.details_tabs.isVisible() and tabs.height() >= 100
    assert charts.bottom() < tabs.top(), (charts, tabs)  # no overlap
    assert page.curves.height() >= page.curves.minimumHeight()
    assert page.tile_eta.value.text() == "—"


def test_a_refused_start_does_not_land_in_the_previous_runs_card(qtbot, window, fake_worker):
    fake_worker("raise")
    w = window()
    w.navigate("train")
    page = w.page("train")
    page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=15_000)
    assert page.badge.text() == "FAILED"
    w.config_model.update({"model.source": "local", "model.path": "/nonexistent/model"})
    page.train_button.click()
    assert page.worker is None or not page.is_training()
    assert page.title.text() == "Ready to train" and page.badge.isHidden()
    assert "Model folder not found" in page.banner.text() and page.curves.point_count() == 0
