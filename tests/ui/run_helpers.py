"""Run folders made by hand for GUI tests: what a finished worker leaves on disk, without running one."""

from __future__ import annotations

import json

from studio.core.config import demo_config
from studio.core.runs import RunState, RunStore


def finished_run(root, config=None, checkpoints=(70, 140), step=210):
    """A completed run folder as the worker leaves it: final weights and complete checkpoints (no worker)."""
    run = RunStore(root).create(config or demo_config())
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    (run.adapter_dir / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
    (run.adapter_dir / "training_state.json").write_text(json.dumps({"step": step}))
    for s in checkpoints:
        ckpt = run.path / "checkpoints" / f"step-{s}"
        ckpt.mkdir(parents=True)
        (ckpt / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
        (ckpt / "trainer_state.pt").write_bytes(b"\0")
        (ckpt / "resume.json").write_text(json.dumps({"step": s, "total_steps": step}))
    run.write_status(state=RunState.COMPLETED, name=run.config().name, started=1.0, ended=2.0, message="Trained.")
    return run
