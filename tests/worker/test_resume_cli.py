"""`studio train --resume RUN_DIR`: continues a killed run in place, or says clearly why it cannot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_resume import _config, _kill_after
from worker_helpers import events_of, make_run

from studio.worker import train as train_module
from studio.worker.reporter import Reporter


def _studio(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


def test_resume_continues_a_killed_run_in_the_same_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)
    run = make_run(tmp_path, _config())
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    assert run.state == "failed"
    res = _studio("train", "--resume", str(run.path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Continues from the checkpoint at step 3 of 6" in res.stdout
    assert "step 4/6" in res.stdout and "step 6/6" in res.stdout and "completed" in res.stdout
    assert "step 1/6" not in res.stdout
    assert run.state == "completed" and run.status()["steps"] == 6
    assert [e["step"] for e in events_of(run, "step")] == [1, 2, 3, 4, 4, 5, 6]  # the curve goes on in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no new run folder


@pytest.mark.parametrize("state,expected", [
    ("failed", "ended before its first checkpoint (one is saved every 3 steps or every 10 minutes)"),
    ("completed", "finished already"),
])
def test_resume_explains_why_it_cannot(tmp_path, state, expected):
    run = make_run(tmp_path, _config())
    run.write_status(state=state)
    res = _studio("train", "--resume", str(run.path), timeout=60)
    assert res.returncode == 2 and expected in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_resume_rejects_a_missing_folder_and_extra_arguments(tmp_path):
    res = _studio("train", "--resume", str(tmp_path / "nope"), timeout=60)
    assert res.returncode == 2 and "no such run folder" in res.stderr
    res = _studio("train", "--demo", "--resume", str(tmp_path), timeout=60)
    assert res.returncode == 2 and "give only the run folder" in res.stderr
    (tmp_path / "empty").mkdir()
    res = _studio("train", "--resume", str(tmp_path / "empty"), timeout=60)
    assert res.returncode == 2 and "not a run folder" in res.stderr
