"""Evaluation metrics come from the libraries, prompt files are read in every shape, results round-trip."""

from __future__ import annotations

import json

import pytest

from studio.core.evaluation import (best_label, corpus_scores, format_samples, format_table, latest_result,
                                    read_prompts, sample_scores, write_result)

PREDICTIONS = ["lantern-42", "wheel-17", "the cat sat on the mat", "crown"]
REFERENCES = ["lantern-42", "wheel-42", "the cat sat on a mat", "crown-30"]


def test_corpus_scores_are_the_libraries_own():
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    scores = corpus_scores(PREDICTIONS, REFERENCES)
    assert scores["exact_match"] == 25.0
    assert scores["bleu"] == round(BLEU(effective_order=True).corpus_score(PREDICTIONS, [REFERENCES]).score, 2)
    assert scores["chrf"] == round(CHRF().corpus_score(PREDICTIONS, [REFERENCES]).score, 2)
    scorer = rouge_scorer.RougeScorer(["rougeL"])  # the library's default tokenizer: same on ASCII text
    rouge = sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(PREDICTIONS, REFERENCES)) / 4
    assert scores["rouge_l"] == round(100 * rouge, 2)
    assert corpus_scores(REFERENCES, REFERENCES) == {"exact_match": 100.0, "rouge_l": 100.0, "bleu": 100.0,
                                                     "chrf": 100.0}


def test_short_answers_get_a_bleu_above_zero():
    # Plain corpus BLEU is 0 whenever no answer has four words; effective order scores what exists.
    assert corpus_scores(["lantern-42", "wheel-17"], ["lantern-42", "wheel-42"])["bleu"] == 50.0


def test_sample_scores_and_words_of_any_script():
    assert sample_scores(" paris \n", "paris") == {"exact_match": 100.0, "rouge_l": 100.0, "bleu": 100.0,
                                                   "chrf": 100.0}
    # rouge-score's default tokenizer drops non-Latin letters (every such score would be 0)
    assert sample_scores("Привет мир", "Привет друг")["rouge_l"] == 50.0
    assert sample_scores("london", "paris")["exact_match"] == 0.0


def test_prompt_files_in_every_shape(tmp_path):
    answers = tmp_path / "qa.jsonl"
    answers.write_text('{"prompt": "What is 2+2?", "answer": "4"}\n{"prompt": "Name a colour"}\n')
    assert read_prompts(answers) == [([{"role": "user", "content": "What is 2+2?"}], "4"),
                                     ([{"role": "user", "content": "Name a colour"}], None)]
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text(json.dumps({"instruction": "Say hi", "input": "", "output": "hi", "system": "be nice"}) + "\n")
    assert read_prompts(alpaca) == [([{"role": "system", "content": "be nice"},
                                      {"role": "user", "content": "Say hi"}], "hi")]
    chats = tmp_path / "chats.jsonl"
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
             {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    chats.write_text(json.dumps({"messages": turns}) + "\n")
    assert read_prompts(chats) == [(turns[:3], "d")]
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer\nWhere?,Here\n")
    assert read_prompts(csv) == [([{"role": "user", "content": "Where?"}], "Here")]


def test_a_prompt_file_without_prompts_is_refused(tmp_path):
    from studio.core.data import DataError

    text = tmp_path / "text.jsonl"
    text.write_text('{"text": "just prose"}\n')
    with pytest.raises(DataError, match="no prompt and answer"):
        read_prompts(text)


def _result():
    rows = [{"label": "base", "step": 0, "val_loss": 7.15, "perplexity": 1276.2, "exact_match": 0.0, "rouge_l": 1.4,
             "bleu": 0.0, "chrf": 6.1},
            {"label": "step-70", "step": 70, "val_loss": 0.61, "perplexity": 1.84},
            {"label": "step-140", "step": 140, "val_loss": 0.46, "perplexity": 1.58},
            {"label": "final", "step": 210, "val_loss": 0.46, "perplexity": 1.58, "exact_match": 95.8,
             "rouge_l": 97.9, "bleu": 90.1, "chrf": 96.3}]
    samples = [{"index": 0, "prompt": "What is the code?", "reference": "bell-42",
                "answers": {"base": "xq", "final": "bell-42"}}]
    return {"version": 1, "created": 1_700_000_000, "rows": rows, "best": best_label(rows),
            "generated": ["base", "final"], "samples": samples}


def test_the_best_checkpoint_is_the_lowest_validation_loss_the_later_on_a_tie():
    assert best_label(_result()["rows"]) == "final"
    assert best_label([{"label": "base", "val_loss": 1.0}, {"label": "step-5", "val_loss": None},
                       {"label": "final", "val_loss": None}]) == "final"


def test_results_are_written_kept_as_latest_and_printed(tmp_path):
    assert latest_result(tmp_path) is None
    path = write_result(tmp_path, _result())
    assert path.parent == tmp_path / "eval" and path.name.startswith("eval-")
    assert latest_result(tmp_path) == json.loads(path.read_text())
    table = format_table(latest_result(tmp_path)).splitlines()
    assert table[0].split() == ["checkpoint", "val", "loss", "perplexity", "exact", "match", "ROUGE-L", "BLEU", "chrF"]
    assert table[2].split() == ["base", "7.1500", "1,276.20", "0.0", "1.4", "0.0", "6.1"]
    assert table[3].split() == ["step-70", "0.6100", "1.84", "-", "-", "-", "-"]
    assert table[5].split()[:2] == ["final", "(best)"]
    samples = format_samples(latest_result(tmp_path))
    assert "reference: bell-42" in samples and "final: bell-42  (exact)" in samples and "base: xq" in samples
