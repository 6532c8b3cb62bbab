"""Suggestions when a run does not fit, the fit limits, the planner table and the CLI commands."""

from __future__ import annotations

import json

import pytest

from studio.core.config import RunConfig
from studio.core.models import catalog_facts
from studio.core.vram import GIB, budget_for, estimate
from studio.core.vram.gpus import find_gpu, resolve_target
from studio.core.vram.plan import NOT_APPLICABLE, plan_table
from studio.core.vram.suggest import fit_limits, suggest

LLAMA8 = catalog_facts("Llama-3.1-8B")
B24 = budget_for(int(24 * GIB))


def big_config() -> RunConfig:
    c = RunConfig()
    for k, v in {"batch_size": 8, "max_seq_len": 4096, "loss_impl": "standard"}.items():
        c = c.replace(f"training.{k}", v)
    return c


def test_no_suggestions_when_it_fits():
    assert suggest(RunConfig().replace("training.batch_size", 1), LLAMA8, budget_for(int(80 * GIB))) == []


def test_suggestions_are_applicable_changes_ranked_by_speed_cost():
    c = big_config()
    sugs = suggest(c, LLAMA8, B24)
    assert sugs
    ranks = [s.cost_rank for s in sugs if s.cost_rank <= 5]
    assert ranks == sorted(ranks)
    assert sugs[0].changes == {"training.loss_impl": "auto"}  # free: the chunked loss
    before = estimate(c, LLAMA8, budget_bytes=B24).device_used
    for s in sugs:
        applied = c
        for path, value in s.changes.items():
            applied = applied.replace(path, value)  # every change is a valid config edit
        after = estimate(applied, LLAMA8, budget_bytes=B24)
        assert after.device_used == s.device_used < before
        assert after.fits(B24) == s.fits
    assert any(s.fits for s in sugs)
    together = next(s for s in sugs if s.cost_rank == 6)
    assert "training.max_seq_len" not in together.changes  # keeps every token


def test_qlora_offered_for_lora():
    c = RunConfig().replace("training.batch_size", 1).replace("training.max_seq_len", 512)
    sugs = suggest(c, catalog_facts("Llama-3.1-70B"), B24)
    assert any(s.changes.get("method.name") == "qlora" for s in sugs)


def test_fit_limits_are_the_edge():
    c = big_config().replace("training.loss_impl", "auto")
    lim = fit_limits(c, LLAMA8, B24)
    assert lim.max_batch >= 1
    assert estimate(c.replace("training.batch_size", lim.max_batch), LLAMA8, budget_bytes=B24).fits(B24)
    assert not estimate(c.replace("training.batch_size", lim.max_batch + 1), LLAMA8, budget_bytes=B24).fits(B24)
    assert estimate(c.replace("training.max_seq_len", lim.max_seq_len), LLAMA8, budget_bytes=B24).fits(B24)
    assert lim.max_seq_len % 64 == 0
    assert fit_limits(c, catalog_facts("Llama-3.1-70B"), B24).max_batch == 0


def test_plan_table_shape_and_monotonicity():
    table = plan_table(LLAMA8, B24)
    assert [r.method for r in table.rows][:3] == ["qlora", "lora", "dora"]
    for row in table.rows:
        assert len(row.max_batch) == len(table.seq_lens)
        vals = [b for b in row.max_batch if b != NOT_APPLICABLE]
        assert vals == sorted(vals, reverse=True), row
    qlora, lora = table.rows[0], table.rows[1]
    assert all(q >= l for q, l in zip(qlora.max_batch, lora.max_batch))
    full = next(r for r in table.rows if r.method == "full")
    assert max(full.max_batch) == 0  # 8B full fine-tuning does not fit 24 GB
    csv_text = table.to_csv()
    assert csv_text.splitlines()[0].startswith("method,seq 512")
    small_ctx = plan_table(catalog_facts("Phi-3-mini-4k-instruct"), B24, seq_lens=(2048, 8192))
    assert small_ctx.rows[0].max_batch[1] == NOT_APPLICABLE


def test_gpu_catalog_lookup():
    assert find_gpu("4090").memory_gib == pytest.approx(24)
    assert find_gpu("a100 80").name == "A100 80GB"
    assert find_gpu("H200").memory_gib > 130
    assert find_gpu("no such card") is None
    with pytest.raises(ValueError, match="unknown GPU"):
        resolve_target("no such card")
    assert resolve_target(memory_gib=12).total_bytes == 12 * GIB


def _cli(argv):
    from tests_cli_helper import run_cli

    return run_cli(argv)


def test_cli_estimate_text_and_json(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    c = big_config().replace("model", {"source": "hub", "path": "meta-llama/Llama-3.1-8B"})
    c.save(path)
    assert _cli(["estimate", str(path), "--gpu", "4090"]) == 1
    out = capsys.readouterr().out
    assert "does NOT fit" in out and "Suggestions" in out and "training.loss_impl = auto" in out
    assert _cli(["estimate", str(path), "--memory", "400", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fits"] is True and data["estimate"]["device_used"] > 20 * GIB
    assert set(data["estimate"]["breakdown"]) >= {"weights", "activations", "logits"}
    assert _cli(["estimate", str(tmp_path / "missing.yaml"), "--gpu", "4090"]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_cli_plan(capsys):
    assert _cli(["plan", "Qwen2.5-0.5B", "--gpu", "3060", "--seq", "512,2048"]) == 0
    out = capsys.readouterr().out
    assert "QLoRA 4-bit r16" in out and "2048" in out
    assert _cli(["plan", "Qwen2.5-0.5B", "--memory", "16", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("method,")
    assert _cli(["plan", "nobody/nothing", "--gpu", "4090"]) == 2
    assert "download it first" in capsys.readouterr().err


def test_cli_calibrate_without_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    assert _cli(["estimate", "--calibrate"]) == 0
    assert "nothing to calibrate" in capsys.readouterr().out
    assert _cli(["estimate"]) == 2


def test_gpu_fits_lists_cards_smallest_first():
    from studio.core.vram.plan import gpu_fits

    c = RunConfig().replace("training.batch_size", 2).replace("training.max_seq_len", 1024)
    fits = gpu_fits(c, LLAMA8)
    sizes = [f.gpu.memory_bytes for f in fits]
    assert sizes == sorted(sizes)
    assert not fits[0].fits and fits[-1].fits  # 10 GB cards are too small for 8B LoRA, 180 GB ones are not
    first = next(f for f in fits if f.fits)
    assert all(f.fits for f in fits if f.gpu.memory_bytes > first.gpu.memory_bytes * 1.5)


def test_cli_plan_with_a_config_lists_fitting_cards(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    RunConfig().replace("training.batch_size", 2).save(path)
    assert _cli(["plan", "Llama-3.1-8B", "--gpu", "4090", "--config", str(path)]) == 0
    assert "fits on: " in capsys.readouterr().out
