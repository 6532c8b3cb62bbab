"""Representative methods through the real worker: train, then export through the method hooks.

Freeze-tuning saves only its trained layers and must merge back into the base; prompt tuning
cannot merge and the export says why; GaLore (own optimizer) and AdaLoRA (budget schedule in an
optimizer hook) must complete a run of the real loop.
"""

from __future__ import annotations

import subprocess

import pytest
import torch
from worker_helpers import events_of, make_run, start_worker

from studio.core.config import demo_config

pytestmark = pytest.mark.slow


def _train(tmp_path, method: dict, steps: int = 3):
    cfg = demo_config().replace("method", method).replace("training.max_steps", steps)
    run = make_run(tmp_path, cfg, name=method["name"])
    proc = start_worker(run)
    assert proc.wait(timeout=300) == 0, run.log_tail(30)
    assert events_of(run, "done")[-1]["status"] == "completed"
    return run


def _export(run, kind: str, out) -> tuple[int, list[dict]]:
    proc = start_worker(run, "export", str(run.path), "--kind", kind, "--out", str(out))
    rc = proc.wait(timeout=300)
    from studio.core.protocol import read_events

    return rc, read_events(run.exports_dir / "export.jsonl")


def test_freeze_tuning_exports_a_merged_model_equal_to_base_plus_trained_layers(tmp_path):
    from transformers import AutoModelForCausalLM

    from studio.core.paths import demo_model_dir
    from studio.worker.methods import runtime_for

    run = _train(tmp_path, {"name": "freeze", "trainable_layers": 1})
    rc, events = _export(run, "merged", tmp_path / "merged")
    assert rc == 0, events
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir(), dtype=torch.float32)
    reloaded = runtime_for(run.config()).load_trained(base, run.adapter_dir)
    x = torch.tensor([[1, 5, 9, 13, 17, 21]])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, reloaded(input_ids=x).logits, atol=1e-5)


def test_prompt_tuning_exports_the_adapter_and_refuses_to_merge(tmp_path):
    run = _train(tmp_path, {"name": "prompt_tuning", "num_virtual_tokens": 4})
    rc, events = _export(run, "adapter", tmp_path / "adapter")
    assert rc == 0 and (tmp_path / "adapter" / "adapter_config.json").exists()
    rc, events = _export(run, "merged", tmp_path / "merged")
    assert rc == 1
    assert "cannot be merged" in [e for e in events if e["type"] == "error"][0]["message"]


@pytest.mark.parametrize("method", [{"name": "galore", "rank": 8, "update_interval": 2},
                                    {"name": "adalora", "init_r": 8, "target_r": 4, "update_every": 1}])
def test_optimizer_side_methods_complete_a_real_run(tmp_path, method):
    run = _train(tmp_path, method, steps=4)
    steps = events_of(run, "step")
    assert steps[-1]["step"] == 4 and all(s["loss"] == s["loss"] for s in steps)
    assert (run.adapter_dir / "training_state.json").exists()
