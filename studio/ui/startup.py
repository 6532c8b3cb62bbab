"""What happens after the window is on screen, and not before: the first paint comes first.

Building the other pages, importing pyqtgraph and the first-launch machine check (a child
process that imports torch) all compete for the CPU. Started right after ``show()`` they kept
the window black for seconds on a 2-core machine (issue #13): the window is mapped, but its
first paint waits for the event loop they occupy. ``when_painted`` runs a callback once the
window has been exposed (Qt paints and flushes it while handling that event), or after a
timeout if it never is (a minimized start).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

SETTLE_MS = 50  # lets the event loop flush the painted frame to the display before heavy work
FALLBACK_MS = 3000


class _ExposeWatcher(QObject):
    def __init__(self, window: QWidget, callback: Callable[[], None], fallback_ms: int):
        super().__init__(window)
        self._callback = callback
        self._done = False
        self._handle = window.windowHandle()
        if self._handle is not None:
            self._handle.installEventFilter(self)
            if self._handle.isExposed():  # some platforms (offscreen) expose within show()
                QTimer.singleShot(SETTLE_MS, self, self._fire)
        QTimer.singleShot(fallback_ms, self, self._fire)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Expose and watched.isExposed():
            QTimer.singleShot(SETTLE_MS, self, self._fire)
        return False

    def _fire(self) -> None:
        if self._done:
            return
        self._done = True
        if self._handle is not None:
            self._handle.removeEventFilter(self)
        self._callback()


def when_painted(window: QWidget, callback: Callable[[], None], fallback_ms: int = FALLBACK_MS) -> None:
    """Call ``callback`` once, shortly after ``window`` (already shown) has been painted on screen."""
    _ExposeWatcher(window, callback, fallback_ms)
