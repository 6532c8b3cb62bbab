"""Background jobs: the newest job in a slot wins, results come on the GUI thread, no failure is swallowed."""

from __future__ import annotations

import sys
import threading
import time

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication

from studio.ui.tasks import JobSlot, start_task


def test_starting_a_job_cancels_the_stale_one_and_drops_its_result(qtbot):
    slot = JobSlot()
    release = threading.Event()
    seen: dict[str, object] = {}
    got: list[tuple[str, object, bool]] = []

    def slow(state):
        seen["first"] = state
        release.wait(5)
        return "stale"

    slot.start(slow, lambda r: got.append(("first", r, QThread.currentThread() is QApplication.instance().thread())))
    qtbot.waitUntil(lambda: "first" in seen, timeout=5000)
    slot.start(lambda state: "fresh", lambda r: got.append(("second", r, True)))
    assert seen["first"].cancelled  # the job can see it is no longer wanted
    qtbot.waitUntil(lambda: not slot.busy, timeout=5000)
    release.set()
    qtbot.wait(200)
    assert got == [("second", "fresh", True)]


def test_results_and_progress_arrive_on_the_gui_thread(qtbot):
    slot = JobSlot()
    threads: list[bool] = []
    progress: list[tuple[int, int, str]] = []

    def job(state):
        state(1, 2, "half")
        return 42

    def done(result):
        threads.append(QThread.currentThread() is QApplication.instance().thread())
        progress.append((result, 0, "done"))

    slot.start(job, done, on_progress=lambda c, t, label: progress.append((c, t, label)))
    qtbot.waitUntil(lambda: not slot.busy, timeout=5000)
    assert threads == [True] and progress == [(1, 2, "half"), (42, 0, "done")]


def test_stop_asks_the_job_to_end_and_still_delivers_its_outcome(qtbot):
    slot = JobSlot()
    got = []

    def job(state):
        while not state.cancelled:
            time.sleep(0.01)
        return "cancelled"

    slot.start(job, got.append)
    slot.stop()
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    assert got == ["cancelled"] and not slot.busy


def test_a_failure_nobody_handles_goes_to_the_excepthook(qtbot, monkeypatch):
    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: hooked.append(e))

    def broken(_state):
        raise KeyError("no such column")

    slot = JobSlot()
    slot.start(broken, lambda r: None)
    qtbot.waitUntil(lambda: not slot.busy, timeout=5000)
    start_task(broken)
    qtbot.waitUntil(lambda: len(hooked) == 2, timeout=5000)
    assert all(isinstance(e, KeyError) for e in hooked)


def test_a_handled_failure_is_a_message(qtbot, monkeypatch):
    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: hooked.append(e))
    messages = []

    def missing(_state):
        raise FileNotFoundError("data.jsonl: file not found")

    slot = JobSlot()
    slot.start(missing, lambda r: None, messages.append)
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert messages == ["data.jsonl: file not found"] and hooked == []


def test_a_stale_jobs_failure_is_dropped(qtbot, monkeypatch):
    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda t, e, tb: hooked.append(e))
    release = threading.Event()

    def failing_later(_state):
        release.wait(5)
        raise RuntimeError("too late to matter")

    slot = JobSlot()
    slot.start(failing_later, lambda r: None)
    slot.start(lambda _state: "fresh", lambda r: None)
    release.set()
    qtbot.wait(300)
    assert hooked == []
