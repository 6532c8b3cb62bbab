"""A NaN or infinite loss ends the run as failed with its cause; it never 'completes' on garbage.

Two ways to get there: weights that are NaN in the model files (the loss is NaN from step one,
and the message names the tensor), and a run whose loss blows up mid-way (the message says to
lower the learning rate, and no NaN weights are saved as the adapter or a checkpoint).
"""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from test_resume import _config
from worker_helpers import events_of, make_run

from studio.core.checkpoints import list_checkpoints
from studio.core.paths import demo_model_dir
from studio.worker import loop as loop_module
from studio.worker import train as train_module
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def test_nan_weights_fail_at_the_first_step_naming_the_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(demo_model_dir(), folder)
    weights = load_file(str(folder / "model.safetensors"))
    name = "model.layers.1.mlp.up_proj.weight"
    weights[name][0, :5] = math.nan
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    cfg = _config(max_steps=4).replace("model", {"source": "local", "path": str(folder)})
    run = make_run(tmp_path, cfg)
    assert train_module.main(run.path) == 1
    error = events_of(run, "error")[-1]
    assert error["kind"] == "model" and name in error["message"] and "NaN" in error["message"]
    assert run.state == "failed" and not events_of(run, "step")
    assert not run.adapter_dir.exists()


def test_a_loss_that_blows_up_mid_run_stops_it_and_saves_nothing_after(tmp_path, monkeypatch):
    real = loop_module.loss_sum
    calls = {"n": 0}

    def blowing_up(model, mb, impl, offset=0):
        calls["n"] += 1
        loss = real(model, mb, impl, offset)
        return loss * math.nan if calls["n"] == 5 else loss  # step 5's forward pass (eval passes come later)

    monkeypatch.setattr(loop_module, "loss_sum", blowing_up)
    run = make_run(tmp_path, _config(max_steps=8, save_steps=2, logging_steps=3))
    assert train_module.main(run.path) == 1
    error = events_of(run, "error")[-1]
    assert error["kind"] == "diverged" and error["traceback"] is None
    assert "Training diverged: the loss became nan at step" in error["message"]
    assert "Lower the learning rate" in error["message"]
    assert run.state == "failed" and not run.adapter_dir.exists()
    assert [c.step for c in list_checkpoints(run.path)] == [2, 4]  # step 6 would hold NaN weights: not written
    for ckpt in list_checkpoints(run.path):
        from safetensors.torch import load_file

        for tensor in load_file(str(ckpt.path / "adapter_model.safetensors")).values():
            assert torch.isfinite(tensor).all()
