"""Resume after Stop trains on: the stop request that ended the first attempt does not end the second.

The first attempt runs in this process and is stopped after step 3 the way the GUI stops it (the
``stop.request`` file); the second attempt is a real worker, started by the CLI's launcher and by
the bare worker command line, and must train steps 4..6 to the same end as an unstopped run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_resume import _config
from worker_helpers import events_of, make_run, start_worker

from studio.worker import loop as loop_module
from studio.worker import train as train_module
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def _stopped_after(tmp_path, monkeypatch, step: int):
    run = make_run(tmp_path, _config(save_steps=0))
    real = loop_module.TrainLoop._step

    def stepping(self, micro):
        out = real(self, micro)
        if self.reporter.run.path == run.path and len(events_of(run, "step")) >= step - 1:
            run.request_stop()  # what the GUI's Stop button and the CLI's Ctrl-C write
        return out

    with monkeypatch.context() as m:
        m.setattr(loop_module.TrainLoop, "_step", stepping)
        assert train_module.main(run.path) == 0
    assert run.state == "stopped" and run.stop_path.exists()
    assert [e["step"] for e in events_of(run, "step")] == [1, 2, 3]
    return run


def test_cli_resume_after_stop_trains_to_the_end(tmp_path, monkeypatch):
    run = _stopped_after(tmp_path, monkeypatch, 3)
    res = subprocess.run([sys.executable, "-m", "studio", "train", "--resume", str(run.path)], capture_output=True,
                         text=True, env=dict(os.environ), timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Stopped before training started" not in res.stdout
    assert "step 4/6" in res.stdout and "step 6/6" in res.stdout
    assert run.state == "completed" and run.status()["steps"] == 6
    assert not run.stop_path.exists()


def test_worker_itself_ignores_a_stop_request_older_than_itself(tmp_path, monkeypatch):
    """Any launcher (an old GUI, a script) may leave the request; the worker judges it by its age."""
    run = _stopped_after(tmp_path, monkeypatch, 3)
    proc = start_worker(run, "train", str(run.path), "--resume", stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    assert run.state == "completed" and run.status()["steps"] == 6
    assert [e["step"] for e in events_of(run, "step")][-3:] == [4, 5, 6]
    assert "removed the stop request left by the previous attempt" in run.log_path.read_text()


def test_a_stop_asked_after_the_worker_started_still_stops_it(tmp_path):
    """Only stale requests are cleared: one written while the worker loads is obeyed."""
    import time

    run = make_run(tmp_path, _config(max_steps=200, save_steps=0))
    proc = start_worker(run, "train", str(run.path))
    deadline = time.time() + 60
    while not any(e["type"] == "hello" for e in run.events()) and time.time() < deadline:
        time.sleep(0.05)
    run.request_stop()
    assert proc.wait(timeout=120) == 0
    assert run.state == "stopped"
    assert len(events_of(run, "step")) < 200
