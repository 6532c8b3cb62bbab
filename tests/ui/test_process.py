"""WorkerProcess against the fake worker: events, logs, graceful stop, kill on timeout, crashes, re-attach."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from studio.ui.process import WorkerProcess
from pathlib import Path

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")


def _collect(proc: WorkerProcess):
    got = {"events": [], "logs": [], "finished": []}
    proc.sig_event_received.connect(got["events"].append)
    proc.sig_log_received.connect(got["logs"].append)
    proc.sig_finished.connect(lambda s, m: got["finished"].append((s, m)))
    return got


def test_completed_run_streams_events_and_logs(qtbot, store, demo_config, fake_worker):
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    assert got["finished"][0][0] == "completed"
    steps = [e["step"] for e in got["events"] if e["type"] == "step"]
    assert steps == [1, 2, 3, 4, 5]
    assert any("library chatter" in line for line in got["logs"])
    assert run.state == "completed"


def test_stop_is_graceful_and_says_which_step(qtbot, store, demo_config, fake_worker):
    fake_worker("until_stop", step_s=0.05)
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: any(e["type"] == "step" for e in got["events"]), timeout=10_000)
    proc.stop()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    state, message = got["finished"][0]
    assert state == "stopped"
    assert message.startswith("Stopped after finishing step ") and "adapter saved" in message
    assert run.state == "stopped"


def test_hanging_worker_is_killed_after_timeout(qtbot, store, demo_config, fake_worker):
    fake_worker("hang", step_s=0.05)
    run = store.create(demo_config)
    proc = WorkerProcess(run, stop_timeout_s=0.5)
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: any(e["type"] == "step" for e in got["events"]), timeout=10_000)
    proc.stop()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    assert got["finished"][0] == ("killed", "Did not stop within 0.5 s; killed.")
    assert run.state == "killed"
    assert not run.worker_alive()


def test_raising_worker_is_marked_failed_with_log_tail(qtbot, store, demo_config, fake_worker):
    fake_worker("raise")
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    state, message = got["finished"][0]
    assert state == "failed"
    assert "fake failure" in message and "Last log lines" in message
    assert run.state == "failed"


def test_sigkilled_worker_is_marked_failed(qtbot, store, demo_config, fake_worker):
    fake_worker("sigkill")
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    state, message = got["finished"][0]
    assert state == "failed"
    assert "SIGKILL" in message and "about to be killed" in message
    assert run.state == "failed"


def test_reattach_follows_a_worker_that_is_not_our_child(qtbot, store, demo_config, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "until_stop")
    monkeypatch.setenv("FAKE_STEP_S", "0.05")
    run = store.create(demo_config)
    child = subprocess.Popen([sys.executable, str(FAKE_WORKER), "train", str(run.path)],
                             stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        qtbot.waitUntil(lambda: run.status().get("pid") == child.pid, timeout=10_000)
        assert [r.id for r in store.active()] == [run.id]
        proc = WorkerProcess(run)
        got = _collect(proc)
        proc.attach(poll_ms=50)
        qtbot.waitUntil(lambda: len([e for e in got["events"] if e["type"] == "step"]) >= 3, timeout=10_000)
        steps = [e["step"] for e in got["events"] if e["type"] == "step"]
        assert steps == list(range(1, len(steps) + 1))  # history first, then live, nothing twice
        proc.stop()
        qtbot.waitUntil(lambda: child.poll() is not None, timeout=10_000)
        qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
        assert got["finished"][0][0] == "stopped"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def test_run_survives_when_the_gui_stops_reading(qtbot, store, demo_config, fake_worker):
    """'Keep training in the background': detaching closes nothing the worker needs."""
    fake_worker("ok", steps=6, step_s=0.1)
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    proc.start()
    qtbot.waitUntil(lambda: run.events_path.exists(), timeout=10_000)
    proc.detach()
    proc._proc.stdout.close() if proc._proc.stdout and not proc._proc.stdout.closed else None
    assert proc._proc.wait(timeout=20) == 0
    assert run.state == "completed"


@pytest.mark.parametrize("kind", ["adapter", "merged"])
def test_export_reports_progress_and_outcome(qtbot, store, demo_config, fake_worker, tmp_path, kind):
    run = store.create(demo_config)
    out = tmp_path / "out"
    proc = WorkerProcess(run, kind="export", extra_args=("--kind", kind, "--out", str(out)))
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    assert got["finished"][0][0] == "completed"
    assert [e["current"] for e in got["events"] if e["type"] == "progress"] == [1, 2, 3]
    assert out.exists()


def test_worker_command_from_source_and_frozen(monkeypatch):
    from studio.core import launcher as process

    assert process.worker_command("train", "/r") == [sys.executable, "-m", "studio", "--worker", "train", "/r"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert process.worker_command("export", "/r", "--kind", "adapter") == [
        sys.executable, "--worker", "export", "/r", "--kind", "adapter"]


def test_worker_that_reports_done_but_never_exits_is_killed(qtbot, store, demo_config, fake_worker):
    fake_worker("hang_after_done", steps=2)
    run = store.create(demo_config)
    proc = WorkerProcess(run)
    proc.done_grace_s = 0.3
    got = _collect(proc)
    proc.start()
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=10_000)
    assert got["finished"][0][0] == "completed"  # the outcome it reported stands
    assert any("did not exit" in line for line in got["logs"])
    assert not run.worker_alive()
