"""``--worker genspeed``: unmerged vs merged generation speed, as events and a result file."""

from __future__ import annotations

import json

import torch
from methods_helpers import build_tiny_llama, load_base

from studio.core.config import RunConfig
from studio.core.protocol import read_events
from studio.core.runs import RunStore
from studio.worker.methods import runtime_for


def _trained_run(tmp_path, method: dict):
    folder = build_tiny_llama(tmp_path / "model")
    cfg = RunConfig.from_dict({"model": {"source": "local", "path": str(folder)}, "method": method,
                               "training": {"device": "cpu"}})
    run = RunStore(tmp_path / "runs").create(cfg)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(folder))
    with torch.no_grad():  # a non-zero adapter, so unmerged and merged really differ in work
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    run.adapter_dir.mkdir()
    runtime.save(model, run.adapter_dir)
    return run


def test_genspeed_measures_adapter_and_merged(tmp_path):
    from studio.worker.gen_speed import main

    run = _trained_run(tmp_path, {"name": "lora", "r": 4})
    assert main(run.path, new_tokens=4, prompt_tokens=8, repeats=1) == 0
    events = read_events(run.exports_dir / "genspeed.jsonl")
    speeds = {e["mode"]: e for e in events if e["type"] == "genspeed"}
    assert set(speeds) == {"adapter", "merged"}
    assert all(e["tokens_per_s"] > 0 and e["new_tokens"] == 4 for e in speeds.values())
    result = json.loads((run.path / "genspeed.json").read_text())
    assert result["speedup"] > 0 and result["device"] == "cpu"
    assert events[-1]["type"] == "done" and "merged (static)" in events[-1]["message"]


def test_genspeed_for_a_method_that_cannot_merge(tmp_path):
    from studio.worker.gen_speed import main

    run = _trained_run(tmp_path, {"name": "prompt_tuning", "num_virtual_tokens": 4})
    assert main(run.path, new_tokens=3, prompt_tokens=8, repeats=1) == 0
    events = read_events(run.exports_dir / "genspeed.jsonl")
    assert [e["mode"] for e in events if e["type"] == "genspeed"] == ["adapter"]
    assert any(e["type"] == "warning" and "cannot be merged" in e["message"] for e in events)


def test_genspeed_without_trained_weights_fails_clearly(tmp_path):
    from studio.worker.gen_speed import main

    folder = build_tiny_llama(tmp_path / "model")
    run = RunStore(tmp_path / "runs").create(RunConfig.from_dict({"model": {"source": "local", "path": str(folder)}}))
    assert main(run.path) == 1
    error = [e for e in read_events(run.exports_dir / "genspeed.jsonl") if e["type"] == "error"][0]
    assert "train the run first" in error["message"]
