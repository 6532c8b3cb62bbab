"""Configs that validate also run, and configs that cannot run are refused with a message, never a traceback.

Also the run record's own edges: concurrent run creation into one folder, and a pid that now
belongs to another process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from studio.core.config import ConfigError, RunConfig
from studio.core.runs import Run, RunState, RunStore, pid_alive, process_started


def _load(tmp_path, text: str) -> RunConfig:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return RunConfig.load(path)


def test_an_empty_config_file_is_refused_not_trained_with_defaults(tmp_path):
    with pytest.raises(ConfigError, match="the file is empty"):
        _load(tmp_path, "")
    with pytest.raises(ConfigError, match="the file is empty"):
        _load(tmp_path, "# only a comment\n")


@pytest.mark.parametrize("value", ["one", "1.5", "true", "0", "[1]"])
def test_a_schema_version_that_is_not_a_version_is_named(tmp_path, value):
    with pytest.raises(ConfigError, match="schema_version: must be a whole number"):
        _load(tmp_path, f"schema_version: {value}\n")


def test_a_seed_numpy_cannot_take_is_refused_at_validation(tmp_path):
    with pytest.raises(ConfigError, match="training.seed"):
        _load(tmp_path, f"training: {{seed: {2 ** 32}}}\n")
    assert _load(tmp_path, f"training: {{seed: {2 ** 32 - 1}}}\n").training.seed == 2 ** 32 - 1


def test_a_misspelt_setting_gets_a_suggestion(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "training: {learnign_rate: 0.001}\nmethod: {name: lora, alpah: 8}\n")
    text = str(info.value)
    assert "training.learnign_rate: no such setting; did you mean learning_rate?" in text
    assert "method.alpah: no such setting; did you mean alpha?" in text


def test_relative_paths_are_fixed_when_the_run_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    cfg = RunConfig.from_dict({"output_dir": "out", "data": {"source": "file", "path": "data/rows.jsonl"},
                               "model": {"source": "local", "path": "~/models/m"}})
    run = RunStore(cfg.output_dir).create(cfg)
    assert run.path.is_absolute() and run.path.parent == tmp_path / "out"
    saved = run.config()
    assert saved.output_dir == str(tmp_path / "out")
    assert saved.data.path == str(tmp_path / "data" / "rows.jsonl")
    assert saved.model.path == os.path.expanduser("~/models/m")


@pytest.mark.slow
def test_the_cli_trains_a_config_with_relative_paths(tmp_path):
    from studio.core.paths import demo_dataset_path

    (tmp_path / "rows.jsonl").write_bytes(demo_dataset_path().read_bytes())
    (tmp_path / "run.yaml").write_text("output_dir: my-runs\ndata: {source: file, path: rows.jsonl}\n"
                                       "training: {max_steps: 2, save_minutes: 0, max_seq_len: 64}\n")
    res = subprocess.run([sys.executable, "-m", "studio", "train", "run.yaml"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=240, env=dict(os.environ))
    assert res.returncode == 0, res.stdout + res.stderr
    runs = list((tmp_path / "my-runs").iterdir())
    assert len(runs) == 1 and Run(runs[0]).state == "completed"


def test_runs_created_at_once_never_collide(tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(name="same")
    made, errors = [], []

    def create():
        try:
            made.append(store.create(cfg).path)
        except Exception as e:  # noqa: BLE001 - the test counts them
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(120)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(made)) == 120


def test_a_reused_pid_is_not_the_run_s_worker(tmp_path):
    """The pid in status.json now belongs to another program: the run is dead, and nobody signals that program."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        store = RunStore(tmp_path / "runs")
        run = store.create(RunConfig(name="r"))
        real_start = process_started(sleeper.pid)
        assert pid_alive(sleeper.pid, real_start)
        run.write_status(state="running", pid=sleeper.pid, pid_started=real_start - 3600)  # the worker, an hour ago
        assert not run.worker_alive()
        assert run.reconcile() == RunState.FAILED
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_gui_kill_of_a_reattached_run_never_signals_a_reused_pid(qtbot, tmp_path):
    from studio.ui.process import WorkerProcess

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        run = RunStore(tmp_path / "runs").create(RunConfig(name="r"))
        run.write_status(state="running", pid=sleeper.pid, pid_started=process_started(sleeper.pid) - 3600)
        proc = WorkerProcess(run)
        proc.attach(poll_ms=10_000)
        proc.kill()
        time.sleep(0.3)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
