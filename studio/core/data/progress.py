"""Progress and cancellation for long data work, usable from a thread, a CLI or a test.

Long computations take a ``Progress`` and call ``update``; ``update`` raises ``Cancelled`` once
``cancel`` was requested, so a cancel stops the work at the next batch boundary.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional


class Cancelled(Exception):
    """The user cancelled the computation."""


class Progress:
    def __init__(self, callback: Optional[Callable[[float, str], None]] = None, min_interval: float = 0.1,
                 cancel: Optional[threading.Event] = None):
        """``cancel``: an event the caller sets to cancel (a GUI task's), instead of calling ``cancel()``."""
        self._callback = callback
        self._cancel = cancel if cancel is not None else threading.Event()
        self._min_interval = min_interval
        self._last = 0.0
        self.fraction = 0.0
        self.message = ""

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def update(self, fraction: float, message: str = "") -> None:
        """Report progress (0..1); throttled so a tight loop doesn't flood the receiver."""
        self.check()
        self.fraction = max(0.0, min(1.0, fraction))
        self.message = message or self.message
        now = time.monotonic()
        if self._callback and (now - self._last >= self._min_interval or fraction >= 1.0):
            self._last = now
            self._callback(self.fraction, self.message)
