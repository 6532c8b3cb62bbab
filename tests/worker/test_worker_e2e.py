"""The demo trained end to end in a real worker process: it learns, reloads and merges exactly."""

from __future__ import annotations

import subprocess

import pytest

from studio.core.paths import demo_model_dir
from tests.worker.worker_helpers import demo_rows, events_of, greedy_answers, make_run, start_worker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory):
    """One run of the demo with its default settings (what pressing Train on the demo does)."""
    run = make_run(tmp_path_factory.mktemp("e2e"))
    proc = start_worker(run, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, run.log_tail(40)
    return run, out.decode("utf-8", "replace")


def test_demo_run_completes_with_a_falling_loss(trained_demo):
    run, stdout = trained_demo
    events = run.events()
    assert events[0]["type"] == "hello" and events[-1]["type"] == "done"
    assert events[-1]["status"] == "completed"
    assert run.status()["state"] == "completed"
    steps = events_of(run, "step")
    assert steps[0]["loss"] > 5.0 and steps[-1]["loss"] < 1.0, [s["loss"] for s in steps]
    assert steps[-1]["step"] == steps[-1]["total_steps"]
    evals = events_of(run, "eval")
    assert evals and evals[-1]["val_loss"] < evals[0]["val_loss"]
    plan = events_of(run, "plan")[0]
    assert plan["device"] == "cpu" and plan["choices"]["loss"]["value"] == "chunked"
    assert (run.path / "engine.json").exists()
    assert (run.adapter_dir / "adapter_config.json").exists()
    assert (run.adapter_dir / "adapter_model.safetensors").exists()
    # the live stream carried the same events as the file, plus the log lines
    assert stdout.count("@@studio/1 ") == len(events)
    assert "engine: loss = chunked" in stdout


def test_trained_demo_answers_its_questions_and_the_base_does_not(trained_demo):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run, _ = trained_demo
    rows = demo_rows()
    questions = [r["instruction"] for r in rows]
    tok = AutoTokenizer.from_pretrained(run.adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir())
    before = greedy_answers(base, tok, questions)
    assert sum(a == r["output"] for a, r in zip(before, rows)) == 0
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo_model_dir()), run.adapter_dir)
    after = greedy_answers(tuned, tok, questions)
    exact = sum(a == r["output"] for a, r in zip(after, rows)) / len(rows)
    assert exact >= 0.8, list(zip(after, rows))[:10]


def test_merged_export_matches_base_plus_adapter(trained_demo, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.worker.export import main as export_main

    run, _ = trained_demo
    out = tmp_path / "merged"
    assert export_main(run.path, "merged", out) == 0
    assert (out / "model.safetensors").exists() and (out / "tokenizer_config.json").exists()
    assert (out / "generation_config.json").exists() and "Base model" in (out / "README.md").read_text()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo_model_dir()), run.adapter_dir).eval()
    ids = torch.randint(4, merged.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (merged(ids).logits - ref(ids).logits).abs().max().item()
    assert diff < 1e-4
    done = [e for e in run.events() if e["type"] == "done"]
    assert len(done) == 1, "an export must not write into the training record"
    assert (run.exports_dir / "export.jsonl").exists()


def test_adapter_export_has_a_model_card(trained_demo, tmp_path):
    from studio.worker.export import main as export_main

    run, _ = trained_demo
    out = tmp_path / "adapter"
    assert export_main(run.path, "adapter", out) == 0
    card = (out / "README.md").read_text()
    assert "LoRA" in card and "Base model" in card
    assert (out / "adapter_model.safetensors").read_bytes() == (run.adapter_dir / "adapter_model.safetensors").read_bytes()
    # exporting into a folder that is not empty is refused, not overwritten
    assert export_main(run.path, "adapter", out) == 1
    err = [e for e in (run.exports_dir / "export.jsonl").read_text().splitlines() if '"error"' in e]
    assert err and "not empty" in err[-1]
