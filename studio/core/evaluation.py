"""Evaluating a run: task metrics, the held-out prompts file, and the result the eval worker writes.

The metrics come from maintained libraries, imported when first used: ROUGE-L from Google's
``rouge-score``, BLEU and chrF from ``sacrebleu`` (BLEU with ``effective_order``: a corpus of short
answers has no 4-grams, and plain BLEU would score every such corpus 0). Exact match compares the
answer and the reference with surrounding whitespace removed. Every score is 0-100.

``python -m studio --worker eval RUN_DIR`` (studio/worker/evaluate.py) writes its result to
``RUN_DIR/eval/eval-<time>.json`` and the same to ``RUN_DIR/eval/latest.json``; ``latest_result``
reads it back for the GUI and the CLI without rerunning anything, and ``format_table`` /
``format_samples`` print it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

EVAL_DIR = "eval"
LATEST = "latest.json"
RESULT_VERSION = 1
METRICS = ("exact_match", "rouge_l", "bleu", "chrf")
METRIC_TITLES = {"exact_match": "exact match", "rouge_l": "ROUGE-L", "bleu": "BLEU", "chrf": "chrF"}


# ---- metrics -----------------------------------------------------------------------------------

class _WordTokenizer:
    """rouge-score's default tokenizer keeps only [a-z0-9]; this keeps the letters of every script too
    (for ASCII text it splits exactly as the default does: lower case, runs of letters and digits)."""

    _WORD = re.compile(r"[^\W_]+")

    def tokenize(self, text: str) -> list[str]:
        return self._WORD.findall(text.lower())


def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())


def exact_match(prediction: str, reference: str) -> bool:
    return prediction.strip() == reference.strip()


def sample_scores(prediction: str, reference: str) -> dict[str, float]:
    """One answer against its reference (sentence-level BLEU and chrF)."""
    from sacrebleu.metrics import BLEU, CHRF

    return {"exact_match": 100.0 * exact_match(prediction, reference),
            "rouge_l": round(100 * _rouge().score(reference, prediction)["rougeL"].fmeasure, 2),
            "bleu": round(BLEU(effective_order=True).sentence_score(prediction, [reference]).score, 2),
            "chrf": round(CHRF().sentence_score(prediction, [reference]).score, 2)}


def corpus_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """A set of answers against their references: mean exact match and ROUGE-L, corpus BLEU and chrF."""
    from sacrebleu.metrics import BLEU, CHRF

    if not predictions:
        return {m: 0.0 for m in METRICS}
    scorer = _rouge()
    n = len(predictions)
    em = sum(exact_match(p, r) for p, r in zip(predictions, references)) / n
    rouge = sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)) / n
    preds, refs = list(predictions), [list(references)]
    return {"exact_match": round(100 * em, 2), "rouge_l": round(100 * rouge, 2),
            "bleu": round(BLEU(effective_order=True).corpus_score(preds, refs).score, 2),
            "chrf": round(CHRF().corpus_score(preds, refs).score, 2)}


# ---- held-out prompts from a file ----------------------------------------------------------------

def read_prompts(path: str | Path, limit: Optional[int] = None) -> list[tuple[list[dict[str, str]], Optional[str]]]:
    """(conversation up to the answer, reference answer or None) for each row of a data file.

    Rows are ``{"prompt": ..., "answer": ...}`` (the answer is optional) or any shape the studio
    trains on (alpaca, messages, ShareGPT, prompt/completion): the last assistant turn is the
    reference and what comes before it the prompt. Raises DataError for a file that has neither.
    """
    from studio.core.data import DataError, detect_format, load_dataset_rows, to_conversations

    loaded = load_dataset_rows(Path(path).expanduser(), limit=limit)
    rows = loaded.rows
    if rows and all(isinstance(r, dict) and isinstance(r.get("prompt"), str) for r in rows):
        answer_keys = ("answer", "reference", "completion", "output", "response")
        out = []
        for r in rows:
            answer = next((r[k] for k in answer_keys if isinstance(r.get(k), str)), None)
            out.append(([{"role": "user", "content": r["prompt"]}], answer))
        return out
    detection = detect_format(rows, source=loaded.source)
    if detection.format == "text":
        raise DataError(f"{loaded.source}: plain-text rows have no prompt and answer; give prompt/answer rows.")
    out = []
    for conv in to_conversations(rows, detection):
        last = max(i for i, t in enumerate(conv) if t["role"] == "assistant")
        out.append((conv[:last], conv[last]["content"]))
    if not out:
        raise DataError(f"{loaded.source}: no row has a prompt and an answer.")
    return out


# ---- the result on disk --------------------------------------------------------------------------

def eval_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVAL_DIR


def write_result(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """``eval/eval-<time>.json`` and ``eval/latest.json`` (each written whole, then renamed into place)."""
    folder = eval_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(result.get("created", time.time())))
    path = folder / f"eval-{stamp}.json"
    text = json.dumps(result, indent=1, ensure_ascii=False)
    for target in (path, folder / LATEST):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return path


def latest_result(run_dir: str | Path) -> Optional[dict[str, Any]]:
    """The newest evaluation of a run, or None when it has none (or the file is unreadable)."""
    try:
        result = json.loads((eval_dir(run_dir) / LATEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and isinstance(result.get("rows"), list) else None


def best_label(rows: Sequence[dict[str, Any]]) -> Optional[str]:
    """The trained weights with the lowest validation loss (the later one on a tie); else the final ones."""
    trained = [r for r in rows if r.get("label") != "base"]
    scored = [r for r in trained if isinstance(r.get("val_loss"), (int, float))]
    if scored:
        return min(reversed(scored), key=lambda r: r["val_loss"])["label"]
    return trained[-1]["label"] if trained else None


# ---- printing ------------------------------------------------------------------------------------

def format_table(result: dict[str, Any]) -> str:
    """The rows as a fixed-width table: checkpoint, validation loss, perplexity and the metrics."""
    head = ["checkpoint", "val loss", "perplexity"] + [METRIC_TITLES[m] for m in METRICS]
    lines = []
    for row in result["rows"]:
        label = row["label"] + (" (best)" if row["label"] == result.get("best") else "")
        cells = [label, _num(row.get("val_loss"), 4), _num(row.get("perplexity"), 2)]
        cells += [_num(row.get(m), 1) for m in METRICS]
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(c) for c in lines])


def format_samples(result: dict[str, Any], limit: int = 5, width: int = 60) -> str:
    """The first answers side by side: prompt, reference, then each generated label's answer."""
    out = []
    for i, sample in enumerate(result.get("samples", [])[:limit], 1):
        out.append(f"[{i}] prompt: {_short(sample['prompt'], width)}")
        if sample.get("reference") is not None:
            out.append(f"    reference: {_short(sample['reference'], width)}")
        for label, answer in sample["answers"].items():
            mark = ""
            if sample.get("reference") is not None:
                mark = "  (exact)" if exact_match(answer, sample["reference"]) else ""
            out.append(f"    {label}: {_short(answer, width)}{mark}")
    return "\n".join(out)


def _num(value: Any, digits: int) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"
