"""``--worker eval`` on the demo: the tuned checkpoints answer the held-out secret codes, the base does not.

The worker runs in this process (studio.worker.evaluate.main) on a copy of the demo trained in
tests/worker/conftest.py; its metrics are recomputed here from the saved answers with the libraries.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from studio.core.protocol import check_event, read_events
from studio.core.runs import Run
from studio.worker import evaluate as eval_module


@pytest.fixture
def demo(trained_demo, tmp_path) -> Run:
    run = Run(tmp_path / "demo")
    shutil.copytree(trained_demo.path, run.path, ignore=shutil.ignore_patterns("chat", "eval"))
    return run


def _result(run: Run) -> dict:
    return json.loads((run.path / "eval" / "latest.json").read_text())


def test_every_checkpoint_is_scored_and_only_the_tuned_model_knows_the_codes(demo):
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    training_record = demo.events_path.read_text()
    assert eval_module.main(demo.path, checkpoint="all") == 0
    result = _result(demo)
    rows = {r["label"]: r for r in result["rows"]}
    assert list(rows) == ["base", "step-70", "step-140", "final"] == result["generated"]
    last_eval = [e for e in demo.events() if e["type"] == "eval"][-1]
    assert rows["final"]["val_loss"] == pytest.approx(last_eval["val_loss"], abs=1e-4)  # the training curve's number
    for row in rows.values():
        assert row["perplexity"] == pytest.approx(math.exp(row["val_loss"]), rel=1e-4)
    assert rows["base"]["val_loss"] > 3 > 1 > rows[result["best"]]["val_loss"]
    assert result["best"] in ("step-140", "final")
    assert rows["base"]["exact_match"] == 0.0
    assert rows[result["best"]]["exact_match"] >= 90.0
    assert result["prompts"] == {"source": "validation", "rows": 24} and len(result["samples"]) == 24

    refs = [s["reference"] for s in result["samples"]]
    assert all(ref.count("-") == 1 for ref in refs)  # held-out secret codes such as bell-42
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    for label, row in rows.items():
        answers = [s["answers"][label] for s in result["samples"]]
        assert row["exact_match"] == round(100 * sum(a == r for a, r in zip(answers, refs)) / len(refs), 2)
        assert row["bleu"] == round(BLEU(effective_order=True).corpus_score(answers, [refs]).score, 2)
        assert row["chrf"] == round(CHRF().corpus_score(answers, [refs]).score, 2)
        rouge = sum(scorer.score(r, a)["rougeL"].fmeasure for a, r in zip(answers, refs)) / len(refs)
        assert row["rouge_l"] == round(100 * rouge, 2)

    events = read_events(demo.path / "eval" / "eval.jsonl")
    for e in events:
        check_event(e["type"], {k: v for k, v in e.items() if k not in ("type", "t")})
    types = [e["type"] for e in events]
    assert types.count("eval_sample") == 24 and types[-2:] == ["eval_result", "done"]
    assert events[-1]["status"] == "completed" and "exact match: base 0%" in events[-1]["message"]
    assert demo.events_path.read_text() == training_record  # the training record is not touched
    assert result["throughput"]["generated_tokens_per_s"] > 0 and result["throughput"]["loss_tokens_per_s"] > 0


def test_answers_to_a_prompts_file_from_the_final_weights(demo, tmp_path):
    from worker_helpers import demo_rows

    rows = demo_rows()[::40]
    prompts = tmp_path / "held-out.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": r["instruction"], "answer": r["output"]}) + "\n" for r in rows))
    assert eval_module.main(demo.path, checkpoint="final", prompts=str(prompts)) == 0
    result = _result(demo)
    assert result["generated"] == ["base", "final"]
    assert result["prompts"]["source"] == "file" and len(result["samples"]) == len(rows)
    final = next(r for r in result["rows"] if r["label"] == "final")
    assert final["exact_match"] >= 80.0
    assert result["samples"][0]["prompt"].endswith("<|im_start|>assistant\n")  # the run's own template
    step70 = next(r for r in result["rows"] if r["label"] == "step-70")
    assert step70["val_loss"] is not None and "exact_match" not in step70


def test_an_unknown_checkpoint_is_refused_with_the_steps_there_are(demo):
    assert eval_module.main(demo.path, checkpoint="999") == 1
    error = [e for e in read_events(demo.path / "eval" / "eval.jsonl") if e["type"] == "error"][0]
    assert error["kind"] == "config" and "(this run has: 70, 140)" in error["message"]


def test_a_missing_base_model_is_named(demo, tmp_path):
    import yaml

    cfg = yaml.safe_load(demo.config_path.read_text())
    cfg["model"] = {"source": "local", "path": str(tmp_path / "gone")}
    demo.config_path.write_text(yaml.safe_dump(cfg))
    assert eval_module.main(demo.path) == 1
    error = [e for e in read_events(demo.path / "eval" / "eval.jsonl") if e["type"] == "error"][0]
    assert error["kind"] == "model" and error["path"] == str(tmp_path / "gone")
