"""The real thing: a worker process SIGKILLed mid-run (no handler runs) is resumed to the end."""

from __future__ import annotations

import os
import signal
import time

import pytest
from worker_helpers import events_of, long_demo_config, make_run, start_worker, wait_for_event

from studio.core.checkpoints import latest_checkpoint, resume_problem

pytestmark = pytest.mark.slow


def test_a_sigkilled_worker_resumes_from_its_last_checkpoint(tmp_path):
    run = make_run(tmp_path, long_demo_config(max_steps=24, save_steps=3))
    proc = start_worker(run)
    try:
        wait_for_event(run, "checkpoint", timeout=120, proc=proc)
        # Let it run on a little past the checkpoint, then kill it without warning.
        first = events_of(run, "checkpoint")[0]["step"]
        while max((e["step"] for e in events_of(run, "step")), default=0) < first + 2 and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    killed_at = max(e["step"] for e in events_of(run, "step"))
    assert killed_at < 24 and run.reconcile() == "failed"
    assert resume_problem(run) == ""
    resumed_from = latest_checkpoint(run.path).step

    proc = start_worker(run, "train", str(run.path), "--resume")
    assert proc.wait(timeout=180) == 0, run.log_tail(30)
    status = run.status()
    assert status["state"] == "completed" and status["steps"] == 24 and status["resumed_from"] == resumed_from
    steps = [e["step"] for e in events_of(run, "step")]
    assert steps[-(24 - resumed_from):] == list(range(resumed_from + 1, 25))
    assert (run.adapter_dir / "adapter_model.safetensors").exists()
