"""Stopping, killing, failing and losing stdout: the run record always ends in a true state."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from studio.core.config import RunConfig, demo_config
from tests.worker.worker_helpers import events_of, long_demo_config, make_run, start_worker, wait_for_event

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("how", ["stop_file", "sigterm"])
def test_stop_finishes_the_step_and_saves_the_adapter(tmp_path, how):
    run = make_run(tmp_path, long_demo_config())
    proc = start_worker(run)
    try:
        wait_for_event(run, "step", proc=proc)
        if how == "stop_file":
            run.request_stop()
        else:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert run.status()["state"] == "stopped"
    done = events_of(run, "done")[-1]
    assert done["status"] == "stopped"
    assert (run.adapter_dir / "adapter_model.safetensors").exists()
    state = json.loads((run.adapter_dir / "training_state.json").read_text())
    assert state["status"] == "stopped" and 0 < state["step"] < 100_000


def test_sigkill_leaves_a_run_that_reconcile_marks_failed(tmp_path):
    run = make_run(tmp_path, long_demo_config())
    proc = start_worker(run)
    wait_for_event(run, "step", proc=proc)
    assert run.state == "running" and run.worker_alive()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert run.reconcile() == "failed"
    assert "without finishing" in run.status()["message"]


def test_losing_stdout_does_not_stop_training(tmp_path):
    run = make_run(tmp_path, long_demo_config(max_steps=40))
    proc = start_worker(run, stdout=subprocess.PIPE)
    for line in proc.stdout:  # read until training has begun, then go away like a closed GUI
        if b'"type":"step"' in line:
            break
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0, run.log_tail(30)
    assert run.status()["state"] == "completed"
    assert events_of(run, "step")[-1]["step"] == 40


def _planted_data_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n{also not json\n", encoding="utf-8")
    return _with(data={"source": "file", "path": str(bad)}), "data"


def _missing_model(tmp_path):
    return _with(model={"source": "local", "path": str(tmp_path / "nowhere")}), "model"


def _with(**sections):
    data = demo_config().to_dict()
    for name, fields in sections.items():
        data[name].update(fields)
    return RunConfig.from_dict(data)


@pytest.mark.parametrize("plant", [_planted_data_error, _missing_model], ids=["data", "model"])
def test_a_failing_run_reports_its_kind_and_exits_non_zero(tmp_path, plant):
    cfg, kind = plant(tmp_path)
    run = make_run(tmp_path, cfg)
    proc = start_worker(run)
    assert proc.wait(timeout=60) != 0
    status = run.status()
    assert status["state"] == "failed" and status["error_kind"] == kind
    error = events_of(run, "error")[-1]
    assert error["kind"] == kind and error["message"]
    assert error["traceback"] is None  # user problems carry no traceback; the log has it
    assert events_of(run, "done")[-1]["status"] == "failed"
    assert "Traceback" in run.log_path.read_text()


def test_checkpoints_are_saved_and_exportable(tmp_path):
    from studio.worker.export import main as export_main

    cfg = long_demo_config(max_steps=4, save_steps=2)
    run = make_run(tmp_path, cfg)
    assert start_worker(run).wait(timeout=90) == 0, run.log_tail(30)
    checkpoints = events_of(run, "checkpoint")
    assert [c["step"] for c in checkpoints] == [2]  # the last step is the final adapter, not a checkpoint
    step2 = run.path / "checkpoints" / "step-2"
    assert (step2 / "adapter_model.safetensors").exists()
    assert json.loads((step2 / "training_state.json").read_text())["step"] == 2
    assert export_main(run.path, "adapter", tmp_path / "from-ckpt", source=str(step2)) == 0
    assert (tmp_path / "from-ckpt" / "adapter_model.safetensors").read_bytes() == \
        (step2 / "adapter_model.safetensors").read_bytes()
    # the checkpoint's optimizer state and resume record are training's, not the adapter's
    assert not (tmp_path / "from-ckpt" / "trainer_state.pt").exists()
    assert not (tmp_path / "from-ckpt" / "resume.json").exists()
