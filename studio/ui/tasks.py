"""Short background jobs (read a dataset's first rows, scan the HF cache, download a model).

A job is a plain function ``fn(state)`` run in a daemon thread. ``state`` is a ``TaskState``: calling it
(``state(current, total, label)``) reports progress, and ``state.cancelled`` / ``state.cancel_event`` tell
the job it is no longer wanted (Orange's TaskState). Results, progress and failures arrive on the GUI
thread as signals of the ``Task``, so the callbacks may touch widgets.

``JobSlot`` is how a page runs one kind of job: starting a job in the slot cancels the one before it
and drops its result, progress and failure (Orange's ConcurrentMixin), so a stale job can neither
overwrite a newer answer nor keep a worker busy when it checks its state. ``stop()`` asks the
current job to stop and still delivers its outcome (a Cancel button).

A failure is data, handed to ``on_failed`` as a message. A job started without ``on_failed`` does
not fail silently: its exception goes to ``sys.excepthook``, which the app turns into the error
dialog and the log file (Anki's operations report an unhandled failure the same way); under
pytest-qt it fails the test.
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, Signal

_alive: set["Task"] = set()  # keeps running tasks referenced until they report

Progress = Callable[[int, int, str], None]


class TaskState:
    """What a job function gets: report progress by calling it; check ``cancelled`` to stop early."""

    def __init__(self, emit: Progress):
        self._emit = emit
        self.cancel_event = threading.Event()

    def __call__(self, current: float, total: float, label: str = "") -> None:
        if not self.cancel_event.is_set():  # a cancelled job's progress is stale
            self._emit(int(current), int(total), str(label))

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        self.cancel_event.set()


class Task(QObject):
    sig_done = Signal(object)
    sig_failed = Signal(str)
    sig_progress = Signal(int, int, str)
    _sig_result = Signal(bool, object)

    def __init__(self, fn: Callable[[TaskState], Any], failure_handled: bool = True):
        super().__init__()
        self._fn = fn
        self._failure_handled = failure_handled
        self.state = TaskState(self.sig_progress.emit)
        self.error: Optional[BaseException] = None
        self._sig_result.connect(self._on_result, Qt.ConnectionType.QueuedConnection)

    def start(self) -> "Task":
        _alive.add(self)
        threading.Thread(target=self._run, daemon=True, name="studio-task").start()
        return self

    def _run(self) -> None:
        try:
            result = self._fn(self.state)
        except Exception as e:  # delivered to the GUI thread as data
            if not isinstance(e, (OSError, ValueError)):
                traceback.print_exc()
            self._sig_result.emit(False, e)
        else:
            self._sig_result.emit(True, result)

    def _on_result(self, ok: bool, value: Any) -> None:
        _alive.discard(self)
        if ok:
            self.sig_done.emit(value)
            return
        self.error = value
        if self._failure_handled:
            self.sig_failed.emit(failure_message(value))
        else:
            report_unhandled(value)


def failure_message(error: BaseException) -> str:
    """A failure as one line: the message of an expected error (a file, a value), else its type too."""
    message = str(error) or type(error).__name__
    return message if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {message}"


def report_unhandled(error: BaseException) -> None:
    """The one place a failure nobody handles goes: the excepthook (the error dialog and the log)."""
    sys.excepthook(type(error), error, error.__traceback__)


def _tolerant(callback: Callable[..., None]) -> Callable[..., None]:
    """A result may arrive after the page that asked for it was closed: then it is dropped."""

    def call(*args: Any) -> None:
        try:
            callback(*args)
        except RuntimeError as e:
            if "already deleted" not in str(e):
                raise

    return call


def start_task(fn: Callable[[TaskState], Any], on_done: Optional[Callable[[Any], None]] = None,
               on_failed: Optional[Callable[[str], None]] = None,
               on_progress: Optional[Progress] = None) -> Task:
    """Run ``fn(state)`` in a thread; the callbacks are called on the GUI thread."""
    task = Task(fn, failure_handled=on_failed is not None)
    if on_done:
        task.sig_done.connect(_tolerant(on_done))
    if on_failed:
        task.sig_failed.connect(_tolerant(on_failed))
    if on_progress:
        task.sig_progress.connect(_tolerant(on_progress), Qt.ConnectionType.QueuedConnection)
    return task.start()


class JobSlot:
    """One job at a time for one purpose; the newest wins (starting one cancels and ignores the last)."""

    def __init__(self) -> None:
        self._task: Optional[Task] = None
        self.key: Any = None  # what the newest job was started for (its inputs), for a page to compare

    def start(self, fn: Callable[[TaskState], Any], on_done: Callable[[Any], None],
              on_failed: Optional[Callable[[str], None]] = None,
              on_progress: Optional[Progress] = None, key: Any = None) -> Task:
        """Start ``fn(state)``; the job running in this slot before is cancelled and its outcome dropped.

        Without ``on_failed`` a failure goes to ``report_unhandled``; a stale job's failure is dropped."""
        self.cancel()
        task = Task(fn)
        self._task = task
        self.key = key

        def finished(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            def call(value: Any) -> None:
                if self._task is task:  # a stale job's outcome never reaches the page
                    self._task = None
                    callback(value)

            return _tolerant(call)

        task.sig_done.connect(finished(on_done))
        task.sig_failed.connect(finished(on_failed or (lambda _message: report_unhandled(task.error))))
        if on_progress is not None:
            task.sig_progress.connect(_tolerant(lambda *a: self._task is task and not task.state.cancelled
                                                  and on_progress(*a)),
                                      Qt.ConnectionType.QueuedConnection)
        return task.start()

    @property
    def busy(self) -> bool:
        """A job was started and its outcome has not arrived yet."""
        return self._task is not None

    @property
    def state(self) -> Optional[TaskState]:
        return self._task.state if self._task is not None else None

    def stop(self) -> None:
        """Ask the current job to stop; its outcome (a partial or "cancelled" result) still arrives."""
        if self._task is not None:
            self._task.state.cancel()

    def cancel(self) -> None:
        """Cancel the current job and drop whatever it still reports."""
        task, self._task = self._task, None
        if task is not None:
            task.state.cancel()
