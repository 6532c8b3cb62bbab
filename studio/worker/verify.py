"""Check an export against the model it came from: the check's inputs, the source's answers, the verdict.

The inputs are the run's own: a few validation examples (training examples when the run has no
validation split) as the run rendered and tokenized them. ``compute_reference`` records what the
source model does on them -- greedy continuations of each prompt (with the gap between its top two
logits at every step), the top token and the loss at every position, and (for merged/adapter
checks) the logits -- before the export is written, so the source can be freed before the export
is loaded (an 8B model fits in memory once, not twice). The checks themselves:
studio.worker.verify_gguf (llama.cpp) and studio.worker.verify_reload (plain transformers / PEFT).

The verdict is ``verification.json`` next to the export (``Verdict.to_json``, its format in
docs/architecture.md) and a ``verification`` event. A failed check keeps the export and says
FAILED; the job exits non-zero.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

VERDICT_FILE = "verification.json"
SCHEMA = 1
MAX_NEW_TOKENS = 24
MAX_SEQ_TOKENS = 160
PROBE = "Hello, world! Ünïcödé 123 4567 — 你好 \t  tabs\nnew line ok's don't  spaces   "


@dataclass
class CheckInputs:
    prompts: list[list[int]]  # token ids up to where the answer starts
    sequences: list[list[int]]  # whole examples, for logits and perplexity
    scored: list[list[bool]]  # per token of each sequence: is it an answer token (perplexity counts it)
    source: str  # where they came from, for the report


@dataclass
class Reference:
    greedy: list[list[int]]
    margins: list[list[float]]  # logit gap between the top two tokens at each greedy step
    tops: list[list[float]]  # the top logit at each greedy step
    top1: list[np.ndarray]
    nll: list[np.ndarray]  # -log p of each scored token
    logits: list[np.ndarray] = field(default_factory=list)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    kind: str  # gguf, merged, adapter
    artifact: str  # file or folder name, relative to where verification.json lies
    checks: list[Check]
    inputs: str
    prompts: list[dict[str, Any]] = field(default_factory=list)
    quant: str = ""
    seconds: float = 0.0
    criteria: str = ""
    runtime_note: str = ""  # something about the runtime, not the file, the user should know

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        head = "VERIFICATION FAILED" if failed or not self.checks else "verification passed"
        return f"{head}: " + "; ".join(c.detail for c in (failed or self.checks))

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": self.kind, "artifact": self.artifact, "quant": self.quant or None,
                "passed": self.passed, "verdict": "PASSED" if self.passed else "FAILED", "summary": self.summary(),
                "criteria": self.criteria, "inputs": self.inputs,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail, **c.values} for c in self.checks],
                "prompts": self.prompts, "runtime_note": self.runtime_note or None, "seconds": round(self.seconds, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from studio import __version__

    out = {"studio": __version__}
    for pkg in ("torch", "transformers", "peft", "gguf", "llama_cpp_python"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def save_verdict(folder: Path, verdict: Verdict) -> Path:
    path = Path(folder) / VERDICT_FILE
    path.write_text(json.dumps(verdict.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# ---- inputs and the reference -------------------------------------------------------------------

def check_inputs(cfg: Any, tokenizer: Any, log: Callable[[str], None], n_prompts: int = 4,
                 n_sequences: int = 6) -> CheckInputs:
    """Prompts and sequences from the run's validation split (else its training data), as trained."""
    from studio.core.data.render import IGNORE_INDEX
    from studio.worker.data import prepare_data

    data = prepare_data(cfg, tokenizer, log=lambda line: None)
    pool, source = (data.val, "validation") if len(data.val) else (data.train, "training")
    examples = [pool[i] for i in range(min(len(pool), max(n_prompts, n_sequences)))]
    prompts, sequences, scored = [], [], []
    for ex in examples:
        ids = list(ex.input_ids)[:MAX_SEQ_TOKENS]
        labels = list(ex.labels)[:MAX_SEQ_TOKENS]
        first = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(ids))
        if len(prompts) < n_prompts:
            cut = first if 0 < first < len(ids) else max(1, len(ids) // 2)
            prompts.append(ids[:cut])
        if len(sequences) < n_sequences:
            sequences.append(ids)
            scored.append([label != IGNORE_INDEX for label in labels])
    where = f"{len(examples)} {source} examples of the run, rendered and tokenized as in training"
    if source == "training":
        where += " (the run has no validation split)"
    log(f"verify: {where}")
    return CheckInputs(prompts, sequences, scored, where)


def stop_ids(tokenizer: Any, location: Optional[str]) -> set[int]:
    """EOS, and every end-of-turn id the model's generation_config stops on."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if location:
        gen = Path(location) / "generation_config.json"
        try:
            eos = json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError):
            eos = None
        ids.update(eos if isinstance(eos, list) else [eos] if isinstance(eos, int) else [])
    return ids


def compute_reference(model: Any, inputs: CheckInputs, stops: set[int], keep_logits: bool = False,
                      use_cache: bool = True) -> Reference:
    """``use_cache`` False recomputes every step (soft-prompt PEFT models do not take a cache from outside)."""
    import torch

    model.eval()
    ref = Reference([], [], [], [], [])
    with torch.no_grad():
        for prompt in inputs.prompts:
            tokens, margins, tops = hf_greedy(model, prompt, stops, use_cache)
            ref.greedy.append(tokens)
            ref.margins.append(margins)
            ref.tops.append(tops)
        for ids, scored in zip(inputs.sequences, inputs.scored):
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
            logits = logits[-len(ids):]  # soft prompts prepend virtual positions
            ref.top1.append(logits.argmax(-1).numpy())
            ref.nll.append(nll(logits.numpy(), ids, scored))
            if keep_logits:
                ref.logits.append(logits.numpy().astype(np.float32))
    return ref


def hf_greedy(model: Any, prompt: list[int], stops: set[int],
               use_cache: bool = True) -> tuple[list[int], list[float], list[float]]:
    import torch

    out: list[int] = []
    margins: list[float] = []
    tops: list[float] = []
    past = None
    step = torch.tensor([prompt])
    for _ in range(MAX_NEW_TOKENS):
        if use_cache:
            res = model(input_ids=step, use_cache=True, **({} if past is None else {_cache_argument(model): past}))
            past = res["cache"] if "cache" in res else res["past_key_values"]
        else:
            res = model(input_ids=torch.tensor([prompt + out]))
        logits = res.logits[0, -1].float()
        top = torch.topk(logits, 2)
        nxt = int(top.indices[0])
        out.append(nxt)
        margins.append(float(top.values[0] - top.values[1]))
        tops.append(float(top.values[0]))
        if nxt in stops:
            break
        step = torch.tensor([[nxt]])
    return out, margins, tops


def _cache_argument(model: Any) -> str:
    """transformers 5.24 renamed ``past_key_values`` to ``cache``; PEFT wrappers pass either through."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def nll(logits: np.ndarray, ids: list[int], scored: list[bool]) -> np.ndarray:
    """-log p(token t | tokens < t) for every scored t (the validation loss's terms)."""
    logits = logits.astype(np.float64)
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    out = [logz[t - 1] - logits[t - 1, ids[t]] for t in range(1, len(ids)) if scored[t]]
    return np.asarray(out, dtype=np.float64)


def ppl(nll: list[np.ndarray]) -> float:
    flat = np.concatenate(nll) if nll else np.zeros(0)
    if not flat.size:
        return float("nan")
    mean = float(flat.mean())
    return math.exp(mean) if mean < 700 else float("inf")  # a random model can be surer than a float can say


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    hits = sum(int((x == y).sum()) for x, y in zip(a, b))
    total = sum(len(x) for x in a)
    return hits / total if total else float("nan")


def prompt_report(tokenizer: Any, inputs: CheckInputs, ref: Reference, got: list[list[int]]) -> list[dict[str, Any]]:
    report = []
    for prompt, want, have in zip(inputs.prompts, ref.greedy, got):
        report.append({"prompt": tokenizer.decode(prompt), "source_tokens": want, "export_tokens": have,
                       "source_text": tokenizer.decode(want), "export_text": tokenizer.decode(have),
                       "equal": want == have})
    return report
