"""``--worker eval RUN_DIR``: how much each checkpoint learned, in loss and in answers.

1. Validation loss and perplexity (exp of the mean token loss) of the base model (training
   switched off), of every complete checkpoint and of the final weights, on the run's validation
   split as the worker trains with it (studio.worker.data.prepare_data: same rendering, loss mask
   and split), so the numbers match the training curve's.
2. Greedy answers to held-out prompts (that validation split, each row's prompt up to its first
   answer, or a file the user gives) from the base and from the chosen weights (``best``: lowest
   validation loss; ``final``; a step; or ``all``), scored against the references by
   studio.core.evaluation (exact match, ROUGE-L, BLEU, chrF).

One base is loaded and the trained weights switch over it (studio.worker.inference). Events go to
``RUN_DIR/eval/eval.jsonl`` (log: ``eval.log``): ``eval_row`` as each table row fills in,
``eval_sample`` per prompt, ``eval_result`` with the table and the file written
(``RUN_DIR/eval/eval-<time>.json`` and ``latest.json``); the training record is not touched.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from studio import __version__
from studio.core.runs import Run
from studio.worker.errors import WorkerError, classify
from studio.worker.reporter import Reporter

EVAL_BATCH = {"cpu": 16, "cuda": 32}  # prompts generated at once


@dataclass
class Weights:
    label: str  # "base", "step-N", "final"
    step: int
    path: Optional[Path]


@dataclass
class HeldOut:
    prompt: str
    prompt_ids: list[int]
    reference: Optional[str]


def main(run_dir: str | Path, checkpoint: str = "best", prompts: Optional[str] = None, max_prompts: int = 100,
         max_new_tokens: Optional[int] = None, base_path: Optional[str] = None) -> int:
    from studio.core.evaluation import eval_dir

    run = Run(Path(run_dir).resolve())
    folder = eval_dir(run.path)
    folder.mkdir(parents=True, exist_ok=True)
    with Reporter(run.path, events_path=folder / "eval.jsonl", log_path=folder / "eval.log") as rep:
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        try:
            result = evaluate(run, rep, checkpoint=checkpoint, prompts=prompts, max_prompts=max_prompts,
                              max_new_tokens=max_new_tokens, base_path=base_path)
        except BaseException as e:  # noqa: BLE001 - every failure ends as an event
            kind, message = classify(e, writing=folder, then="evaluate again")
            tb = traceback.format_exc()
            rep.log(tb.rstrip())
            rep.emit("error", message=message, kind=kind, path=getattr(e, "path", None),
                     traceback=tb if kind == "internal" else None)
            rep.emit("done", status="failed", message=message)
            return 1
        rep.emit("done", status="completed", message=summary(result))
        return 0


def trained_weights(run: Run) -> list[Weights]:
    """Every complete checkpoint, oldest first, then the final weights (when the run saved them)."""
    import json

    from studio.core.checkpoints import list_checkpoints

    found = [Weights(f"step-{c.step}", c.step, c.path) for c in list_checkpoints(run.path)]
    if run.adapter_dir.is_dir() and any(run.adapter_dir.glob("*.safetensors")):
        try:
            step = int(json.loads((run.adapter_dir / "training_state.json").read_text(encoding="utf-8"))["step"])
        except (OSError, ValueError, KeyError, TypeError):
            step = found[-1].step if found else 0
        found.append(Weights("final", step, run.adapter_dir))
    return found


def evaluate(run: Run, rep: Reporter, checkpoint: str = "best", prompts: Optional[str] = None,
             max_prompts: int = 100, max_new_tokens: Optional[int] = None,
             base_path: Optional[str] = None) -> dict[str, Any]:
    from studio.core.chat import with_base_path
    from studio.core.evaluation import best_label, write_result
    from studio.worker.data import prepare_data
    from studio.worker.inference import Target, check_base_model, load_for_inference
    from studio.worker.modeling import load_tokenizer

    started = time.perf_counter()
    cfg = run.config()
    if base_path:
        cfg = with_base_path(cfg, base_path)
    trained = trained_weights(run)
    if not trained:
        raise WorkerError(f"{run.path} has no trained weights yet (no adapter/, no checkpoint): train the run first.",
                          kind="config")
    _check_choice(checkpoint, trained)
    check_base_model(cfg)

    rep.emit("phase", phase="loading_data", detail=prompts or "the run's validation split")
    tokenizer = load_tokenizer(cfg)
    data = prepare_data(cfg, tokenizer, log=rep.log)
    if not data.val:
        rep.emit("warning", message="This run has no validation split (validation split 0), so there is no "
                                    "validation loss; set one, or give --prompts for answers to score.")
    held_out = _held_out(cfg, tokenizer, data, prompts, max_prompts, rep)

    rep.emit("phase", phase="loading_model", detail=cfg.model.path or "demo model")
    loaded = load_for_inference(Target(cfg, run, trained[-1].path, trained[-1].label), log=rep.log)
    for note in loaded.notes:
        rep.emit("warning", message=note)
    rows = [Weights("base", 0, None)] + trained
    table: dict[str, dict[str, Any]] = {}
    loss_tokens = 0
    loss_seconds = 0.0
    rep.emit("phase", phase="evaluating", detail=f"validation loss of the base and {len(trained)} trained weights")
    for w in rows:
        row = {"label": w.label, "step": w.step, "path": str(w.path) if w.path else None,
               "val_loss": None, "perplexity": None}
        if data.val:
            _use(loaded, w)
            t0 = time.perf_counter()
            loss, tokens = validation_loss(loaded, "base" if w.path is None else "tuned", data.val,
                                           cfg.training.batch_size, tokenizer.pad_token_id or 0)
            loss_seconds += time.perf_counter() - t0
            loss_tokens += tokens
            row.update(val_loss=round(loss, 6), perplexity=round(math.exp(min(loss, 700)), 4), loss_tokens=tokens)
        table[w.label] = row
        rep.emit("eval_row", **row)
    best = best_label(list(table.values()))
    chosen = _chosen(checkpoint, trained, best)

    answers: dict[str, list[str]] = {}
    gen_tokens = 0
    gen_seconds = 0.0
    if held_out:
        limit = max_new_tokens or _answer_budget(tokenizer, held_out)
        for w in [rows[0]] + chosen:
            _use(loaded, w)
            t0 = time.perf_counter()
            texts, tokens = _generate(loaded, "base" if w.path is None else "tuned", held_out, limit, cfg, rep, w.label)
            gen_seconds += time.perf_counter() - t0
            gen_tokens += tokens
            answers[w.label] = texts
    samples = _score(table, answers, held_out, rep)
    result = {
        "version": 1, "run": run.id, "created": time.time(), "device": loaded.device, "precision": loaded.precision,
        "quantized": loaded.quantized, "method": cfg.method.name, "mode": loaded.mode,
        "prompts": ({"source": "file", "path": str(Path(prompts).expanduser().resolve())} if prompts
                    else {"source": "validation", "rows": len(data.val)}),
        "rows": list(table.values()), "best": best, "generated": list(answers), "samples": samples,
        "throughput": {"loss_tokens_per_s": round(loss_tokens / loss_seconds, 1) if loss_seconds else None,
                       "generated_tokens_per_s": round(gen_tokens / gen_seconds, 1) if gen_seconds else None,
                       "loss_tokens": loss_tokens, "generated_tokens": gen_tokens, "prompts": len(held_out),
                       "seconds": round(time.perf_counter() - started, 2)},
        "notes": loaded.notes,
    }
    path = write_result(run.path, result)
    rep.emit("eval_result", path=str(path), rows=result["rows"], best=best, generated=list(answers),
             throughput=result["throughput"])
    return result


# ---- choosing and switching weights -------------------------------------------------------------

def _check_choice(checkpoint: str, trained: list[Weights]) -> None:
    if checkpoint in ("best", "final", "all"):
        if checkpoint == "final" and trained[-1].label != "final":
            raise WorkerError("This run has no final weights (adapter/) yet; choose a checkpoint step or best.",
                              kind="config")
        return
    steps = [w.step for w in trained if w.label.startswith("step-")]
    if not checkpoint.isdigit() or int(checkpoint) not in steps:
        have = ", ".join(map(str, steps)) or "none"
        raise WorkerError(f"--checkpoint {checkpoint}: use best, final, all or the step of a complete checkpoint "
                          f"(this run has: {have}).", kind="config")


def _chosen(checkpoint: str, trained: list[Weights], best: Optional[str]) -> list[Weights]:
    if checkpoint == "all":
        return trained
    wanted = {"best": best, "final": "final"}.get(checkpoint, f"step-{checkpoint}")
    return [w for w in trained if w.label == wanted] or trained[-1:]


def _use(loaded: Any, w: Weights) -> None:
    """Make ``w`` the tuned side (the base side needs nothing: it is the tuned side switched off)."""
    if w.path is None or loaded.active == w.label:
        return
    if w.label in loaded.adapters and loaded.mode == "adapter":
        loaded.set_adapter(w.label)
    else:
        loaded.load_adapter(w.label, w.path)


def validation_loss(loaded: Any, side: str, examples: Any, batch_size: int, pad_id: int,
                    read: Optional[list[int]] = None) -> tuple[float, int]:
    """Mean token loss over the examples' loss tokens, and how many there were (``read`` gets the tokens read)."""
    import torch

    from studio.worker.batching import EvalBatches
    from studio.worker.loss import loss_sum

    total = 0.0
    count = 0
    with loaded.side(side) as model, torch.inference_mode():
        for mb in EvalBatches(examples, batch_size, pad_id):
            total += float(loss_sum(model, mb.to(loaded.device), "standard", loaded.logits_offset(side)))
            count += mb.loss_tokens
            if read is not None:
                read.append(mb.useful_tokens)
    return total / max(1, count), count


# ---- held-out prompts ------------------------------------------------------------------------------

def _held_out(cfg: Any, tokenizer: Any, data: Any, prompts: Optional[str], limit: int, rep: Reporter) -> list[HeldOut]:
    from studio.core.data.render import render_prompt

    if prompts:
        from studio.core.evaluation import read_prompts

        out = []
        for conv, reference in read_prompts(prompts, limit=limit):
            p = render_prompt(conv, tokenizer, cfg.data.effective_template, cfg.data.train_on)
            out.append(HeldOut(p.text, p.input_ids, reference))
        return out
    examples = data.val
    if cfg.data.train_on != "completion" and examples:
        # Trained on every token: the split into prompt and answer comes from the completion-only rendering
        # of the same rows (same de-duplication, same seed: the same validation rows).
        from studio.worker.data import prepare_data

        completion = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_on": "completion"})})
        examples = prepare_data(completion, tokenizer, log=lambda _line: None).val
    out = []
    for ex in examples:
        item = _split(ex, tokenizer)
        if item is not None:
            out.append(item)
        if len(out) >= limit:
            break
    if examples and not out:
        rep.emit("warning", message="The validation rows have no prompt/answer split (plain text), so no answers "
                                    "were generated; give --prompts FILE with prompt/answer rows.")
    return out


def _split(example: Any, tokenizer: Any) -> Optional[HeldOut]:
    """A validation example as (prompt up to its first answer, that answer); None when it has no prompt."""
    from studio.core.data.render import IGNORE_INDEX

    labels = example.labels
    first = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), None)
    only_bos = first == 1 and example.input_ids[0] == tokenizer.bos_token_id
    if example.truncated or first is None or first == 0 or only_bos:
        return None
    end = next((i for i in range(first, len(labels)) if labels[i] == IGNORE_INDEX), len(labels))
    prompt_ids = list(example.input_ids[:first])
    reference = tokenizer.decode(list(example.input_ids[first:end]), skip_special_tokens=True)
    return HeldOut(tokenizer.decode(prompt_ids, skip_special_tokens=False), prompt_ids, reference.strip())


def _answer_budget(tokenizer: Any, held_out: list[HeldOut]) -> int:
    """A little more than the longest reference (the answer can be longer); 256 without references."""
    refs = [h.reference for h in held_out if h.reference is not None]
    if not refs:
        return 256
    longest = max(len(tokenizer.encode(r, add_special_tokens=False)) for r in refs)
    return int(min(512, max(16, longest * 1.5 + 8)))


def _generate(loaded: Any, side: str, held_out: list[HeldOut], max_new_tokens: int, cfg: Any, rep: Reporter,
              label: str) -> tuple[list[str], int]:
    from studio.core.data.render import stop_texts, template_tokenizer
    from studio.worker.generation import greedy_batch

    tok = loaded.tokenizer
    stops = stop_texts(*template_tokenizer(cfg.data.effective_template, tok))
    batch = EVAL_BATCH.get(loaded.device, 16)
    texts: list[str] = []
    tokens = 0
    with loaded.side(side) as model:
        for start in range(0, len(held_out), batch):
            chunk = held_out[start:start + batch]
            for text, n in greedy_batch(model, tok, [h.prompt_ids for h in chunk], max_new_tokens, stops,
                                        loaded.device):
                texts.append(text.strip())
                tokens += n
            rep.emit("progress", label=f"answering with {label}", current=len(texts), total=len(held_out))
    return texts, tokens


def _score(table: dict[str, dict[str, Any]], answers: dict[str, list[str]], held_out: list[HeldOut],
           rep: Reporter) -> list[dict[str, Any]]:
    from studio.core.evaluation import corpus_scores, sample_scores

    scored = [i for i, h in enumerate(held_out) if h.reference is not None]
    for label, texts in answers.items():
        row = table[label]
        row["samples"] = len(texts)
        if scored:
            row.update(corpus_scores([texts[i] for i in scored], [held_out[i].reference for i in scored]))
        rep.emit("eval_row", **row)
    samples = []
    for i, h in enumerate(held_out):
        sample = {"index": i, "prompt": h.prompt, "reference": h.reference,
                  "answers": {label: texts[i] for label, texts in answers.items()}}
        if h.reference is not None:
            sample["scores"] = {label: sample_scores(texts[i], h.reference) for label, texts in answers.items()}
        rep.emit("eval_sample", **sample)
        samples.append(sample)
    return samples


def summary(result: dict[str, Any]) -> str:
    rows = {r["label"]: r for r in result["rows"]}
    parts = []
    best = result.get("best")
    if best and rows[best].get("val_loss") is not None:
        parts.append(f"best: {best} (validation loss {rows[best]['val_loss']:.4f}, "
                     f"base {rows['base']['val_loss']:.4f})")
    em = [f"{label} {rows[label]['exact_match']:.0f}%" for label in result.get("generated", [])
          if rows[label].get("exact_match") is not None]
    if em:
        parts.append("exact match: " + ", ".join(em))
    return "; ".join(parts) or "evaluated"
