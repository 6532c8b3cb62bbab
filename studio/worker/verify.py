"""Check an export against the model it came from, in the runtime its users will load it with.

The inputs are the run's own: a few validation examples (training examples when the run has no
validation split) as the run rendered and tokenized them. ``compute_reference`` records what the
source model does on them -- greedy continuations of each prompt, the top token and the loss at
every position, and (for merged/adapter checks) the logits -- before the export is written, so
the source can be freed before the export is loaded (an 8B model fits once, not twice).

- GGUF (``verify_gguf``): the file is loaded in llama.cpp (llama-cpp-python, in a child process:
  studio.worker.llama_check). Its tokenizer must
  give transformers' token ids for the prompts and a probe text. f32/f16/bf16 must then produce
  the same greedy tokens; quantized types report top-1 agreement and the perplexity change, and
  fail below the agreement a correct file reaches (studio.core.gguf_plan.QUANTS.min_top1) or
  when perplexity rises by more than half.
- merged (``verify_merged``): reloaded with plain ``AutoModelForCausalLM.from_pretrained``;
  greedy tokens equal and logits within 1e-3 of their scale.
- adapter (``verify_adapter``): reloaded over a fresh base with plain ``PeftModel.from_pretrained``
  (non-PEFT methods: plain transformers/safetensors), compared with the studio's own loading.

The verdict is ``verification.json`` next to the export (``Verdict.to_json``) and a
``verification`` event. A failed check keeps the export and says FAILED; the job exits non-zero.
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
MAX_PPL_INCREASE = 0.5  # a quantized file whose perplexity rises more than this is broken, not just rounded
LOGIT_TOLERANCE = 1e-3  # merged / adapter: max |logit difference| / max |logit|


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
    ref = Reference([], [], [], [])
    with torch.no_grad():
        for prompt in inputs.prompts:
            tokens, margins = _hf_greedy(model, prompt, stops, use_cache)
            ref.greedy.append(tokens)
            ref.margins.append(margins)
        for ids, scored in zip(inputs.sequences, inputs.scored):
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
            logits = logits[-len(ids):]  # soft prompts prepend virtual positions
            ref.top1.append(logits.argmax(-1).numpy())
            ref.nll.append(_nll(logits.numpy(), ids, scored))
            if keep_logits:
                ref.logits.append(logits.numpy().astype(np.float32))
    return ref


def _hf_greedy(model: Any, prompt: list[int], stops: set[int], use_cache: bool = True) -> tuple[list[int], list[float]]:
    import torch

    out: list[int] = []
    margins: list[float] = []
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
        if nxt in stops:
            break
        step = torch.tensor([[nxt]])
    return out, margins


def _cache_argument(model: Any) -> str:
    """transformers 5.24 renamed ``past_key_values`` to ``cache``; PEFT wrappers pass either through."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def _nll(logits: np.ndarray, ids: list[int], scored: list[bool]) -> np.ndarray:
    """-log p(token t | tokens < t) for every scored t (the validation loss's terms)."""
    logits = logits.astype(np.float64)
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    out = [logz[t - 1] - logits[t - 1, ids[t]] for t in range(1, len(ids)) if scored[t]]
    return np.asarray(out, dtype=np.float64)


def _ppl(nll: list[np.ndarray]) -> float:
    flat = np.concatenate(nll) if nll else np.zeros(0)
    return float(math.exp(flat.mean())) if flat.size else float("nan")


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    hits = sum(int((x == y).sum()) for x, y in zip(a, b))
    total = sum(len(x) for x in a)
    return hits / total if total else float("nan")


def _prompt_report(tokenizer: Any, inputs: CheckInputs, ref: Reference, got: list[list[int]]) -> list[dict[str, Any]]:
    report = []
    for prompt, want, have in zip(inputs.prompts, ref.greedy, got):
        report.append({"prompt": tokenizer.decode(prompt), "source_tokens": want, "export_tokens": have,
                       "source_text": tokenizer.decode(want), "export_text": tokenizer.decode(have),
                       "equal": want == have})
    return report


# ---- GGUF in llama.cpp -----------------------------------------------------------------------------

def verify_gguf(path: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, quant: Any, stops: set[int],
                log: Callable[[str], None]) -> Verdict:
    from studio.worker.llama_check import run_llama, spec_for

    started = time.time()
    criteria = ("tokenizer: llama.cpp's token ids equal transformers' for every prompt and a probe text; "
                + ("greedy tokens identical to the source model on every prompt" if quant.lossless else
                   f"top-1 agreement with the source model >= {quant.min_top1:.0%} and perplexity at most "
                   f"{MAX_PPL_INCREASE:.0%} above the source's on the check's answer tokens"))
    verdict = Verdict("gguf", path.name, [], inputs.source, quant=quant.name, criteria=criteria)
    texts = [tokenizer.decode(p) for p in inputs.prompts] + [PROBE]
    res, note = run_llama(spec_for(path, texts, inputs.prompts, inputs.sequences, stops, MAX_NEW_TOKENS), log)
    verdict.runtime_note = note
    if res.get("error"):
        verdict.checks.append(Check("loads", False, f"llama.cpp cannot run the file: {res['error']}"))
        verdict.seconds = time.time() - started
        return verdict
    verdict.checks.append(_tokenizer_check(tokenizer, texts, res))
    got = res["greedy"]
    verdict.prompts = _prompt_report(tokenizer, inputs, ref, got)
    equal = sum(p["equal"] for p in verdict.prompts)
    top1 = [np.asarray(t) for t in res["top1"]]
    nll = [np.asarray([v for v, s in zip(seq, scored[1:]) if s], dtype=np.float64)
           for seq, scored in zip(res["nll"], inputs.scored)]
    agree = _agreement(ref.top1, top1)
    ppl_src, ppl_gguf = _ppl(ref.nll), _ppl(nll)
    change = ppl_gguf / ppl_src - 1 if ppl_src == ppl_src and ppl_src > 0 else float("nan")
    values = {"equal_prompts": equal, "prompts": len(inputs.prompts)}
    greedy_detail = f"greedy tokens identical on {equal}/{len(inputs.prompts)} prompts"
    if quant.lossless:
        ties = _near_ties(ref, got)
        verdict.checks.append(Check("greedy", equal == len(inputs.prompts),
                                    greedy_detail + (f" ({ties})" if ties else ""), values))
    else:
        verdict.checks.append(Check("greedy", True, greedy_detail + " (informative for a quantized file)", values))
    verdict.checks.append(Check("top1_agreement", quant.lossless or agree >= quant.min_top1,
                                f"top-1 agreement {agree:.1%} over {sum(len(t) for t in top1)} positions",
                                {"value": round(agree, 4)}))
    verdict.checks.append(Check("perplexity", quant.lossless or not (change > MAX_PPL_INCREASE),
                                f"perplexity {ppl_src:.4g} -> {ppl_gguf:.4g} ({change:+.2%}) on "
                                f"{sum(len(n) for n in nll)} answer tokens",
                                {"source": ppl_src, "export": ppl_gguf, "change": change}))
    verdict.seconds = time.time() - started
    return verdict


def _tokenizer_check(tokenizer: Any, texts: list[str], res: dict[str, Any]) -> Check:
    bad = [text for text, have in zip(texts, res["tokens"])
           if tokenizer(text, add_special_tokens=False)["input_ids"] != have]
    want = tokenizer("a", add_special_tokens=True)["input_ids"]
    if want != res["bos_probe"]:
        bad.append(f"BOS/EOS around 'a': transformers {want}, llama.cpp {res['bos_probe']}")
    if bad:
        return Check("tokenizer", False, f"llama.cpp tokenizes {len(bad)} of {len(texts) + 1} texts differently "
                     f"(first: {bad[0][:80]!r})", {"mismatches": bad[:5]})
    return Check("tokenizer", True, f"token ids identical on {len(texts) + 1} texts")


def _near_ties(ref: Reference, got: list[list[int]]) -> str:
    """Where a lossless file's tokens differ, how close the source's own top two were (a 16-bit rounding tie)."""
    gaps = []
    for want, have, margins in zip(ref.greedy, got, ref.margins):
        at = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), None)
        if at is not None:
            gaps.append(margins[at])
    return f"source's top-2 logit gap where they part: {', '.join(f'{g:.4f}' for g in gaps)}" if gaps else ""


# ---- merged and adapter exports --------------------------------------------------------------------

def _compare_models(model: Any, inputs: CheckInputs, ref: Reference, stops: set[int], tokenizer: Any,
                    verdict: Verdict, use_cache: bool = True) -> None:
    import torch

    model.eval()
    worst = scale = 0.0
    with torch.no_grad():
        for ids, want in zip(inputs.sequences, ref.logits):
            have = model(input_ids=torch.tensor([ids])).logits[0].float()[-len(ids):].numpy()
            worst = max(worst, float(np.abs(have - want).max()))
            scale = max(scale, float(np.abs(want).max()))
        got = [_hf_greedy(model, p, stops, use_cache)[0] for p in inputs.prompts]
    verdict.prompts = _prompt_report(tokenizer, inputs, ref, got)
    equal = sum(p["equal"] for p in verdict.prompts)
    verdict.checks.append(Check("greedy", equal == len(got), f"greedy tokens identical on {equal}/{len(got)} prompts",
                                {"equal_prompts": equal, "prompts": len(got)}))
    rel = worst / max(scale, 1e-6)
    verdict.checks.append(Check("logits", rel <= LOGIT_TOLERANCE, f"logits differ by at most {worst:.2e} "
                                f"({rel:.1e} of their scale {scale:.1f})",
                                {"max_abs_diff": worst, "relative": rel}))


def _tokenizer_files_check(folder: Path, tokenizer: Any, inputs: CheckInputs) -> Check:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - a tokenizer that does not load is the verdict
        return Check("tokenizer", False, f"the exported tokenizer does not load: {e}")
    texts = [tokenizer.decode(p) for p in inputs.prompts] + [PROBE]
    bad = [t for t in texts if tok(t, add_special_tokens=False)["input_ids"] !=
           tokenizer(t, add_special_tokens=False)["input_ids"]]
    if bad:
        return Check("tokenizer", False, f"the exported tokenizer encodes {len(bad)} of {len(texts)} texts differently")
    return Check("tokenizer", True, f"the exported tokenizer gives the same ids on {len(texts)} texts")


def verify_merged(folder: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, stops: set[int],
                  dtype: Any) -> Verdict:
    from transformers import AutoModelForCausalLM

    started = time.time()
    verdict = Verdict("merged", ".", [], inputs.source, criteria=(
        "reloaded with plain transformers AutoModelForCausalLM: greedy tokens identical to the exporting "
        f"process's model, logits within {LOGIT_TOLERANCE:g} of their scale, tokenizer ids identical"))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except Exception as e:  # noqa: BLE001 - a model that does not load is the verdict
        verdict.checks.append(Check("loads", False, f"transformers cannot load the export: {e}"))
    else:
        _compare_models(model, inputs, ref, stops, tokenizer, verdict)
        del model
    verdict.checks.append(_tokenizer_files_check(folder, tokenizer, inputs))
    verdict.seconds = time.time() - started
    return verdict


def plain_reload(folder: Path, base_location: str, dtype: Any) -> tuple[Any, str]:
    """The exported adapter over a fresh base, loaded the way a user without the studio would."""
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_location, dtype=dtype)
        return PeftModel.from_pretrained(base, str(folder)), "plain PEFT (PeftModel.from_pretrained over the base)"
    if (folder / "config.json").is_file():
        return (AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype),
                "plain transformers (AutoModelForCausalLM.from_pretrained)")
    from safetensors.torch import load_file

    model = AutoModelForCausalLM.from_pretrained(base_location, dtype=dtype)
    tensors: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    missing = [n for n in tensors if n not in dict(model.named_parameters())]
    if missing:
        raise ValueError(f"{len(missing)} exported tensors are not parameters of the base (first: {missing[0]})")
    model.load_state_dict(tensors, strict=False)
    return model, "plain transformers + safetensors (the trained tensors loaded over the base by name)"


def verify_adapter(folder: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, stops: set[int],
                   base_location: str, dtype: Any, use_cache: bool = True) -> Verdict:
    started = time.time()
    verdict = Verdict("adapter", ".", [], inputs.source)
    try:
        model, how = plain_reload(folder, base_location, dtype)
    except Exception as e:  # noqa: BLE001 - an adapter that does not load is the verdict
        verdict.checks.append(Check("loads", False, f"the export does not load: {e}"))
    else:
        verdict.criteria = (f"reloaded with {how}: logits within {LOGIT_TOLERANCE:g} of their scale of the "
                            "studio's own loading of the trained weights, greedy tokens identical")
        _compare_models(model, inputs, ref, stops, tokenizer, verdict, use_cache)
        del model
    verdict.seconds = time.time() - started
    return verdict
