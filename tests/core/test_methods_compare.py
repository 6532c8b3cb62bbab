"""Comparisons: per-method configs, grouping in the run store, summaries from events, the table."""

from __future__ import annotations

import json

import pytest

from studio.core.compare import (CompareError, comparison_configs, comparison_ids, comparison_runs,
                                 create_comparison, format_table, parse_methods, summarise_events, summarise_run)
from studio.core.config import RunConfig
from studio.core.runs import RunStore


def test_configs_share_everything_but_the_method_and_its_learning_rate():
    base = RunConfig().replace("method", {"name": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]})
    base = base.replace("training.learning_rate", 1e-4)
    cfgs = comparison_configs(base, "lora, dora,ia3,prompt_tuning,full", steps=30)
    assert [c.method.name for c in cfgs] == ["lora", "dora", "ia3", "prompt_tuning", "full"]
    assert all(c.training.max_steps == 30 and c.model == base.model and c.data == base.data for c in cfgs)
    assert cfgs[1].method.r == 8 and cfgs[1].method.target_modules == ["q_proj", "v_proj"]  # carried over
    assert cfgs[0].training.learning_rate == 1e-4 and cfgs[1].training.learning_rate == 1e-4  # the user's rate
    # other families keep the user's calibration, moved by the ratio of recommended rates
    assert cfgs[2].training.learning_rate == pytest.approx(1e-4 * 3e-3 / 2e-4)
    assert cfgs[4].training.learning_rate == pytest.approx(1e-4 * 1e-5 / 2e-4)
    same = comparison_configs(base, ["ia3"], same_lr=True)
    assert same[0].training.learning_rate == 1e-4 and same[0].training.max_steps == base.training.max_steps
    assert len({c.name for c in cfgs}) == len(cfgs)


def test_methods_the_user_did_not_tune_are_fitted_to_the_model():
    from studio.core.compare import model_facts

    facts = model_facts(RunConfig())  # the demo: k/v are 32 wide
    vb = comparison_configs(RunConfig(), ["vblora"], facts=facts)[0].method
    assert vb.vector_length == 32 and not vb.problems(facts)
    own = RunConfig().replace("method", {"name": "vblora", "vector_length": 128})
    assert comparison_configs(own, ["vblora"], facts=facts)[0].method.vector_length == 128  # the user's choice


def test_bad_method_lists_are_explained():
    with pytest.raises(CompareError, match="unknown method lorra"):
        parse_methods("lora,lorra")
    with pytest.raises(CompareError, match="at least one"):
        parse_methods(" , ")
    assert parse_methods("lora,lora,ia3") == ["lora", "ia3"]


def test_runs_are_grouped_by_comparison(tmp_path):
    store = RunStore(tmp_path)
    cfgs = comparison_configs(RunConfig(), ["lora", "ia3"], steps=2)
    runs = create_comparison(store, cfgs, "cmp-a")
    create_comparison(store, comparison_configs(RunConfig(), ["dora"], steps=2), "cmp-b")
    assert [r.id for r in comparison_runs(store, "cmp-a")] == [r.id for r in runs]
    assert set(comparison_ids(store)) == {"cmp-a", "cmp-b"}
    assert runs[1].status()["comparison_method"] == "ia3"


EVENTS = [
    {"type": "hello", "t": 100.0},
    {"type": "plan", "t": 101.0, "trainable_params": 500, "total_params": 10_500},
    {"type": "step", "t": 102.0, "step": 1, "loss": 3.0, "tokens": 100, "elapsed_s": 1.0, "mem_peak_allocated": 2 << 30},
    {"type": "step", "t": 103.0, "step": 2, "loss": 2.5, "tokens": 300, "elapsed_s": 2.0, "mem_peak_allocated": 3 << 30},
    {"type": "eval", "t": 104.0, "step": 2, "val_loss": 2.7},
    {"type": "done", "t": 105.0, "status": "completed", "message": "ok"},
]


def test_summary_reads_the_events():
    row = summarise_events(EVENTS, run_id="r1", method="dora", state="completed", learning_rate=2e-4)
    assert row.title == "DoRA" and row.trainable_params == 500 and row.trainable_share == pytest.approx(500 / 10_500)
    assert row.final_loss == 2.5 and row.final_val_loss == 2.7 and row.steps == 2
    assert row.tokens_per_s == 150.0 and row.train_s == 2.0 and row.wall_s == 5.0
    assert row.peak_mem == 3 << 30
    assert row.loss_curve == [(1, 3.0), (2, 2.5)] and row.val_curve == [(2, 2.7)]
    table = format_table([row])
    assert "| DoRA | 500 | 4.76 | 0.0002 | 2.0 s | 150 | 3.00 GiB | 2.5 | 2.7 | completed |" in table
    json.dumps(row.to_dict())


def test_a_failed_run_still_gets_a_row(tmp_path):
    store = RunStore(tmp_path)
    run = create_comparison(store, comparison_configs(RunConfig(), ["ia3"]), "cmp-x")[0]
    run.events_path.write_text(json.dumps({"type": "error", "t": 1, "message": "out of memory"}) + "\n"
                               + json.dumps({"type": "done", "t": 2, "status": "failed"}) + "\n")
    row = summarise_run(run)
    assert row.state == "failed" and row.message == "out of memory" and row.final_loss is None
    assert "| IA3 | — |" in format_table([row])


@pytest.mark.slow
def test_cli_compare_trains_each_method_in_a_real_worker(tmp_path, capsys):
    from studio.cli import main

    out = tmp_path / "results.json"
    rc = main(["compare", "--demo", "--methods", "lora,prompt_tuning,lisa", "--steps", "2",
               "--output-dir", str(tmp_path / "runs"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "| LoRA |" in printed and "| Prompt tuning |" in printed and "| LISA |" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [r["state"] for r in rows] == ["completed"] * 3
    assert all(r["final_loss"] is not None and r["trainable_params"] for r in rows)
    store = RunStore(tmp_path / "runs")
    assert len(comparison_runs(store, json.loads(out.read_text())["comparison"])) == 3


def test_cli_compare_refuses_methods_this_machine_cannot_run(tmp_path, capsys, monkeypatch):
    from studio.cli import main
    from studio.core import gpu

    monkeypatch.setattr(gpu, "has_cuda_gpu", lambda: False)
    rc = main(["compare", "--demo", "--methods", "lora,qlora", "--output-dir", str(tmp_path)])
    assert rc == 2
    assert "qlora: QLoRA needs an NVIDIA GPU" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was started
