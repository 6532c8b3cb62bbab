"""RunStore: create, list, status, stop requests, and reconciling runs whose worker died."""

from __future__ import annotations

import subprocess
import sys

from studio.core.config import RunConfig
from studio.core.runs import RunStore


def test_create_writes_config_and_status(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(RunConfig(name="my run"))
    assert run.config().name == "my run" and run.state == "created"
    assert "my-run" in run.id
    second = store.create(RunConfig(name="my run"))
    assert second.id != run.id
    assert [r.id for r in store.list()] == sorted([run.id, second.id], reverse=True)
    assert store.get(run.id).path == run.path


def test_status_merges_and_stop_requests(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    run.write_status(state="running", pid=1)
    run.write_status(message="hi")
    assert run.status()["state"] == "running" and run.status()["message"] == "hi"
    assert not run.stop_requested()
    run.request_stop()
    assert run.stop_requested()


def test_reconcile_marks_a_dead_worker_failed(tmp_path):
    run = RunStore(tmp_path).create(RunConfig())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run.write_status(state="running", pid=proc.pid)
    run.log_path.write_text("line one\nlast words\n")
    assert run.reconcile() == "failed"
    assert "last words" in run.status()["message"]


def test_reconcile_leaves_live_and_finished_runs_alone(tmp_path):
    import os

    store = RunStore(tmp_path)
    alive = store.create(RunConfig(name="alive"))
    alive.write_status(state="running", pid=os.getpid())
    done = store.create(RunConfig(name="done"))
    done.write_status(state="completed", pid=999_999_999)
    assert alive.reconcile() == "running" and done.reconcile() == "completed"
    assert [r.id for r in store.active()] == [alive.id]
