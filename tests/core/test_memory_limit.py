"""training.memory_limit_gb: the run plans (and the worker enforces) at most that much GPU memory."""

from __future__ import annotations

import json

from studio.core.config import RunConfig
from studio.core.models import resolve_facts
from studio.core.vram import GIB, budget_for, limited_budget, resolve_auto


def _config(**training) -> RunConfig:
    c = RunConfig().replace("model", {"source": "hub", "path": "meta-llama/Llama-3.1-8B"})
    for k, v in training.items():
        c = c.replace(f"training.{k}", v)
    return c


def test_the_limit_caps_the_budget_and_none_leaves_it():
    assert limited_budget(80 * GIB, _config()) == 80 * GIB
    assert limited_budget(80 * GIB, _config(memory_limit_gb=20)) == 20_000_000_000
    assert limited_budget(10 * GIB, _config(memory_limit_gb=20)) == 10 * GIB  # the GPU is the smaller
    assert limited_budget(None, _config(memory_limit_gb=20)) == 20_000_000_000


def test_auto_checkpointing_fits_under_the_limit():
    cfg = _config(batch_size=4, max_seq_len=1024)
    facts = resolve_facts(cfg.model.source, cfg.model.path)
    budget = budget_for(80 * GIB)
    assert resolve_auto(cfg, facts, budget).gradient_checkpointing is False  # fits an 80 GB card without
    limited = resolve_auto(cfg.replace("training.memory_limit_gb", 24.0), facts, budget)
    assert limited.gradient_checkpointing is True and "22.4 GiB available" in limited.reason


def test_cli_estimate_reports_against_the_limit(tmp_path, capsys):
    from tests_cli_helper import run_cli

    path = tmp_path / "run.yaml"
    _config(batch_size=4, max_seq_len=1024, memory_limit_gb=12.0).save(path)
    assert run_cli(["estimate", str(path), "--memory", "80"]) == 1
    out = capsys.readouterr().out
    assert "(your limit 12 GB)" in out and "does NOT fit" in out
    assert run_cli(["estimate", str(path), "--memory", "80", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["target"]["budget_bytes"] == 12_000_000_000


def test_the_worker_enforces_the_limit_only_on_a_gpu():
    from studio.worker.engine import apply_memory_limit

    none = apply_memory_limit(0.0, "cuda")
    assert none.value == "none" and "free memory minus a margin" in none.reason
    assert "not enforced on the CPU" in apply_memory_limit(12.0, "cpu").reason


def test_fp16_full_training_is_estimated_with_fp32_master_weights():
    from studio.core.vram import estimate

    cfg = _config(batch_size=1, max_seq_len=256, gradient_checkpointing="on").replace("method", {"name": "full"})
    facts = resolve_facts(cfg.model.source, cfg.model.path)
    bf16 = estimate(cfg.replace("training.precision", "bf16"), facts)
    fp16 = estimate(cfg.replace("training.precision", "fp16"), facts)
    assert fp16.breakdown["trainable"] == 2 * bf16.breakdown["trainable"]
    assert fp16.breakdown["optimizer"] == 2 * bf16.breakdown["optimizer"]
    assert any("fp32" in n for n in fp16.notes)
