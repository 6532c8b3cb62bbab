"""Short background jobs (scan the HF cache, download a model, read a run's events).

``start_task(fn, ...)`` runs ``fn(progress)`` in a daemon thread; ``progress(current, total, label)``
may be called from it. Results, errors and progress arrive on the GUI thread as signals of the
returned ``Task``, so slots may touch widgets. Errors arrive as data (the message), never as a
traceback in a dialog the user did not ask for.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal

_alive: set["Task"] = set()  # keeps running tasks referenced until they report


class Task(QObject):
    sig_done = Signal(object)
    sig_failed = Signal(str)
    sig_progress = Signal(int, int, str)
    _sig_result = Signal(bool, object)

    def __init__(self, fn: Callable[..., Any]):
        super().__init__()
        self._fn = fn
        self._sig_result.connect(self._on_result, Qt.ConnectionType.QueuedConnection)
        self.running = False

    def start(self) -> "Task":
        self.running = True
        _alive.add(self)
        threading.Thread(target=self._run, daemon=True, name="studio-task").start()
        return self

    def _run(self) -> None:
        try:
            result = self._fn(lambda cur, tot, label="": self.sig_progress.emit(int(cur), int(tot), str(label)))
        except Exception as e:  # delivered to the GUI as a message
            message = str(e) or type(e).__name__
            if not isinstance(e, (OSError, ValueError)):
                message = f"{type(e).__name__}: {message}"
                traceback.print_exc()
            self._sig_result.emit(False, message)
        else:
            self._sig_result.emit(True, result)

    def _on_result(self, ok: bool, value: Any) -> None:
        self.running = False
        _alive.discard(self)
        if ok:
            self.sig_done.emit(value)
        else:
            self.sig_failed.emit(str(value))


def _tolerant(callback: Callable[..., None]) -> Callable[..., None]:
    """A result may arrive after the page that asked for it was closed: then it is dropped."""

    def call(*args: Any) -> None:
        try:
            callback(*args)
        except RuntimeError as e:
            if "already deleted" not in str(e):
                raise

    return call


def start_task(fn: Callable[[Callable[..., None]], Any], on_done: Callable[[Any], None] | None = None,
               on_failed: Callable[[str], None] | None = None,
               on_progress: Callable[[int, int, str], None] | None = None) -> Task:
    task = Task(fn)
    if on_done:
        task.sig_done.connect(_tolerant(on_done))
    if on_failed:
        task.sig_failed.connect(_tolerant(on_failed))
    if on_progress:
        task.sig_progress.connect(_tolerant(on_progress), Qt.ConnectionType.QueuedConnection)
    return task.start()
