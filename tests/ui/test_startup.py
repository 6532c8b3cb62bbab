"""The first seconds: the window closes cleanly however early, and the heavy work waits for the first paint.

Issue #13: closing the window ~1 s after it appeared left the process running without a window
(7 of 11 tries), and the window stayed black for seconds while pages were built behind it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QWidget

ROOT = Path(__file__).resolve().parents[2]


class _WindowsShown(QObject):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def eventFilter(self, watched, event):  # noqa: N802
        if event.type() == QEvent.Type.Show and isinstance(watched, QWidget) and watched.isWindow():
            self.names.append(f"{type(watched).__name__} {getattr(watched, 'text', lambda: '')()!r}")
        return False


def test_building_the_pages_shows_no_window_but_the_main_one(qtbot, window):
    """Any window shown cancels Qt's pending quit; a page under construction once showed its card subtitles."""
    spy = _WindowsShown()
    QApplication.instance().installEventFilter(spy)
    try:
        w = window(build_all=True)
        w.show()
        for key in w.page_keys():
            w.navigate(key)
    finally:
        QApplication.instance().removeEventFilter(spy)
    assert [n for n in spy.names if not n.startswith("MainWindow")] == []


CLOSE_EARLY = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(["studio"])
    import studio.app as studio_app

    def close_when_shown():
        shown = [w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]
        if shown:
            QTimer.singleShot(DELAY_MS, shown[0].close)
        else:
            QTimer.singleShot(5, close_when_shown)

    QTimer.singleShot(0, close_when_shown)
    sys.exit(studio_app.main([]))
""")


def test_closing_the_window_right_after_launch_ends_the_process(tmp_path):
    """Closed at once and while the other pages are being built: the process exits each time."""
    env = dict(os.environ, STUDIO_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    for delay_ms in (0, 150, 400):
        script = CLOSE_EARLY.replace("DELAY_MS", str(delay_ms))
        try:
            result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                                    timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"closed {delay_ms} ms after show: the process was still running 90 s later")
        assert result.returncode == 0, result.stderr[-2000:]


def test_the_other_pages_wait_for_the_first_paint(qtbot, window):
    from studio.ui.startup import when_painted

    w = window(build_all=False)
    calls = []
    w.show()
    when_painted(w, lambda: calls.append(set(w.pages)))
    assert calls == []  # never from within show(): the paint has not reached the screen yet
    qtbot.waitUntil(lambda: bool(calls), timeout=2000)  # offscreen windows are exposed at once; well before the fallback
    qtbot.wait(100)
    assert calls == [{"model"}]  # once
