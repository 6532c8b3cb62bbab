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


def test_a_run_in_an_output_folder_is_remembered_and_listed_with_the_others(tmp_path, monkeypatch):
    """The GUI and `studio runs` list the same runs: the default folder's and every output folder's."""
    from studio.core import run_roots

    monkeypatch.setattr(run_roots, "_path", lambda: tmp_path / "run_roots.json")
    default = RunStore(tmp_path / "runs")
    home_run = default.create(RunConfig(name="at-home"))
    elsewhere = tmp_path / "elsewhere"
    away_run = RunStore.for_config(RunConfig(name="away", output_dir=str(elsewhere)), default.root).create(
        RunConfig(name="away", output_dir=str(elsewhere)))
    assert away_run.path.parent == elsewhere.resolve()
    assert run_roots.known_roots(default.root) == [default.root, elsewhere.resolve()]
    assert {r.id for r in run_roots.all_runs(default.root)} == {home_run.id, away_run.id}
    assert [r.id for r in run_roots.all_runs(roots=[default.root])] == [home_run.id]
    assert run_roots.find_run(away_run.id, default.root).path == away_run.path
    assert run_roots.find_run(str(home_run.path)).path == home_run.path
    # A run created without an output folder remembers nothing; a folder that is gone is skipped.
    RunStore(tmp_path / "scratch").create(RunConfig(name="scratch"))
    assert len(run_roots.known_roots(default.root)) == 2
    import shutil

    shutil.rmtree(elsewhere)
    assert run_roots.known_roots(default.root) == [default.root]
    try:
        run_roots.find_run(away_run.id, default.root)
    except FileNotFoundError as e:
        assert away_run.id in str(e)
    else:
        raise AssertionError("a deleted run was found")
