"""When a run does not fit: concrete config changes, cheapest in speed first, and the limits.

Every ``Suggestion`` is a dict of dotted config paths to values, so the GUI applies it with one
click (``ConfigModel.update``) and the CLI prints it. ``fit_limits`` finds the largest
micro-batch and the longest max length that fit, by binary search over the estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from studio.core.config import RunConfig
from studio.core.models import ModelFacts
from studio.core.vram.estimator import GIB, Estimate, estimate_setup
from studio.core.vram.machine import REFERENCE_MACHINE, Machine, Overheads
from studio.core.vram.setup import STUDIO, Recipe, Setup, resolve_setup

MAX_BATCH = 4096
MAX_SEQ = 1_048_576


@dataclass(frozen=True)
class Suggestion:
    title: str
    changes: dict[str, Any]  # dotted RunConfig path -> value
    speed_cost: str  # what it costs, in words
    cost_rank: int  # 0 = free; higher = slower
    device_used: int  # estimated memory after the change
    saves: int  # bytes saved
    fits: bool
    short_cost: str = ""

    def describe(self) -> str:
        return ", ".join(f"{k} = {v}" for k, v in self.changes.items())


@dataclass(frozen=True)
class FitLimits:
    max_batch: int  # 0 = not even a batch of 1 fits
    max_seq_len: int  # at the current batch size; 0 = nothing fits


def _setup_fits(make: Callable[[bool], Setup], facts: ModelFacts, ov: Overheads, budget: int, gc_mode: str) -> bool:
    """Does it fit, letting 'auto' checkpointing turn on as the engine would?"""
    if gc_mode == "auto":
        return (estimate_setup(make(False), facts, ov).device_used <= budget
                or estimate_setup(make(True), facts, ov).device_used <= budget)
    return estimate_setup(make(gc_mode == "on"), facts, ov).device_used <= budget


def _largest(fits: Callable[[int], bool], lo: int, hi: int) -> int:
    """Largest n in [lo, hi] with fits(n), assuming monotonicity; lo - 1 when none."""
    if not fits(lo):
        return lo - 1
    n = lo
    while n < hi and fits(min(hi, n * 2)):
        n = min(hi, n * 2)
    if n == hi:
        return hi
    good, bad = n, min(hi, n * 2)
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def fit_limits(config: RunConfig, facts: ModelFacts, budget_bytes: int, *, recipe: Recipe = STUDIO,
               machine: Machine = REFERENCE_MACHINE, bf16_supported: bool = True) -> FitLimits:
    ov = machine.overheads
    gc_mode = config.training.gradient_checkpointing
    base = {g: resolve_setup(config, facts, recipe=recipe, gc=g, bf16_supported=bf16_supported, machine=machine)
            for g in (False, True)}
    extra = base[False].seq - int(config.training.max_seq_len)  # virtual tokens

    def batch_fits(b: int) -> bool:
        return _setup_fits(lambda g: replace(base[g], batch=b), facts, ov, budget_bytes, gc_mode)

    def seq_fits(s: int) -> bool:
        return _setup_fits(lambda g: replace(base[g], seq=s + extra), facts, ov, budget_bytes, gc_mode)

    max_batch = max(0, _largest(batch_fits, 1, MAX_BATCH))
    seq_cap = MAX_SEQ
    max_seq = max(0, _largest(seq_fits, 8, seq_cap))
    if max_seq >= 128:
        max_seq -= max_seq % 64  # a round number a person would type
    return FitLimits(max_batch, max_seq)


_CANDIDATES = [
    # (cost rank, title, speed cost, the cost in two or three words)
    (0, "Use the chunked loss", "no slowdown; full fp32 logits never exist", "no slowdown"),
    (1, "Use 8-bit AdamW", "about the same speed; needs bitsandbytes", "same speed"),
    (2, "Turn on gradient checkpointing", "about 20-30% slower (activations are recomputed)", "~25% slower"),
    (3, "Smaller micro-batch, more accumulation", "slower: fewer tokens per pass; same effective batch",
     "slower per token"),
    (4, "Quantize the base (QLoRA)", "10-40% slower and a small quality cost; needs an NVIDIA GPU", "10-40% slower"),
    (5, "Shorter max length", "longer examples are truncated", "truncates examples"),
]


# Needs checkpointing; ranked with it (listed after it): each layer's input is copied to pinned CPU
# memory in the forward and back before its recompute (PyTorch's save_on_cpu).
_OFFLOAD = (2, "Offload checkpoints to CPU memory", "about 10-15% slower (layer inputs are copied to "
            "pinned CPU memory and back); uses that much CPU RAM", "~10-15% slower")

# Not a trade-off: bf16 adapter compute is faster than PEFT's fp32 one and saves the fp32 input copies.
_ADAPTER_COMPUTE = (0, "Compute adapters in bf16 (fp32 master weights)",
                    "faster: no fp32 copies of activations, products on tensor cores", "faster")


def suggest(config: RunConfig, facts: ModelFacts, budget_bytes: int, *, recipe: Recipe = STUDIO,
            machine: Machine = REFERENCE_MACHINE, bf16_supported: bool = True) -> list[Suggestion]:
    """Changes that make the run smaller, ranked by speed cost; empty when it already fits."""
    from studio.core.vram import estimate

    def est(cfg: RunConfig) -> Estimate:
        return estimate(cfg, facts, budget_bytes=budget_bytes, recipe=recipe, machine=machine,
                        bf16_supported=bf16_supported)

    current = est(config)
    if current.fits(budget_bytes):
        return []
    t = config.training
    s = current.setup
    proposals: list[tuple[int, dict[str, Any]]] = []
    if (t.adapter_compute == "fp32" and not s.autocast and recipe.follows_adapter_compute
            and s.precision in ("bf16", "fp16") and s.family in ("lora", "waveft")):
        proposals.append((0, {"training.adapter_compute": "auto"}))
    if s.loss == "standard" and t.loss_impl == "standard":
        proposals.append((0, {"training.loss_impl": "auto"}))
    if t.optimizer == "adamw" and current.breakdown["optimizer"] > 128 * 1024 ** 2:
        proposals.append((1, {"training.optimizer": "adamw_8bit"}))
    if not s.gc:
        proposals.append((2, {"training.gradient_checkpointing": "on"}))
    elif not s.offload and recipe.offloads and t.device != "cpu":
        proposals.append((2, {"training.offload_checkpoints": "on"}))
    limits = fit_limits(config, facts, budget_bytes, recipe=recipe, machine=machine, bf16_supported=bf16_supported)
    if t.batch_size > 1:
        b = max(1, min(limits.max_batch, t.batch_size - 1))
        accum = math.ceil(t.grad_accum * t.batch_size / b)
        proposals.append((3, {"training.batch_size": b, "training.grad_accum": min(4096, accum)}))
    if config.method.quantized_variant:
        proposals.append((4, {"method.name": config.method.quantized_variant}))
    if 8 <= limits.max_seq_len < t.max_seq_len:
        proposals.append((5, {"training.max_seq_len": limits.max_seq_len}))

    out: list[Suggestion] = []
    for rank, changes in proposals:
        cfg = _apply(config, changes)
        if cfg is None:
            continue
        e = est(cfg)
        saves = current.device_used - e.device_used
        if saves <= 0 or (saves < 0.02 * current.device_used and not e.fits(budget_bytes)):
            continue  # not worth a click
        _, title, cost, short = (_ADAPTER_COMPUTE if "training.adapter_compute" in changes
                                 else _OFFLOAD if "training.offload_checkpoints" in changes else _CANDIDATES[rank])
        out.append(Suggestion(_title(title, changes), changes, cost, rank, e.device_used, saves,
                              e.fits(budget_bytes), short))
    if not any(x.fits and x.cost_rank < 5 for x in out):
        combined = _combine(config, facts, est, budget_bytes, current.device_used,
                            lambda c: fit_limits(c, facts, budget_bytes, recipe=recipe, machine=machine,
                                                 bf16_supported=bf16_supported))
        if combined is not None:
            # before truncation: keeping every token is worth the combined speed cost
            at = next((i for i, x in enumerate(out) if x.cost_rank == 5), len(out))
            out.insert(at, combined)
    return out


def _title(title: str, changes: dict[str, Any]) -> str:
    if "training.batch_size" in changes:
        return f"Micro-batch {changes['training.batch_size']}, accumulate {changes['training.grad_accum']}"
    if "training.max_seq_len" in changes:
        return f"Max length {changes['training.max_seq_len']} tokens"
    return title


def _combine(config: RunConfig, facts: ModelFacts, est: Callable[[RunConfig], Estimate], budget: int, before: int,
             limits: Callable[[RunConfig], FitLimits]) -> Optional[Suggestion]:
    """Keep the length: apply the free and cheap savers, then the largest micro-batch that fits
    (accumulating more to keep the effective batch), then QLoRA if still needed."""
    t = config.training
    steps: list[dict[str, Any]] = []
    if t.loss_impl == "standard":
        steps.append({"training.loss_impl": "auto"})
    if t.optimizer == "adamw":
        steps.append({"training.optimizer": "adamw_8bit"})
    if t.gradient_checkpointing != "on":
        steps.append({"training.gradient_checkpointing": "on"})
    if t.offload_checkpoints != "on":  # skipped below where it saves nothing
        steps.append({"training.offload_checkpoints": "on"})
    quantize = config.method.quantized_variant
    changes: dict[str, Any] = {}
    cfg = config
    for extra in steps + [None, {"method.name": quantize} if quantize else None, None]:
        if extra is None:  # shrink the micro-batch as far as needed
            lim = limits(cfg)
            if lim.max_batch >= 1 and lim.max_batch < t.batch_size:
                extra = {"training.batch_size": lim.max_batch,
                         "training.grad_accum": min(4096, math.ceil(t.grad_accum * t.batch_size / lim.max_batch))}
            else:
                continue
        trial = _apply(cfg, extra)
        if trial is None:
            continue
        e = est(trial)
        if e.device_used > 0.98 * est(cfg).device_used:
            continue  # does not help enough to be worth its cost
        cfg = trial
        changes.update(extra)
        if e.fits(budget):
            names = []
            for k in changes:
                short = _short(k, changes)
                if short and short not in names:
                    names.append(short)
            return Suggestion(" + ".join(names), changes, "the sum of their costs", 6,
                              e.device_used, before - e.device_used, True, "combined cost")
    return None


def _short(path: str, changes: dict[str, Any]) -> str:
    if path == "training.batch_size":
        return f"micro-batch {changes[path]}"
    return {"training.loss_impl": "Chunked loss", "training.optimizer": "8-bit optimizer",
            "training.gradient_checkpointing": "checkpointing", "training.grad_accum": "",
            "training.offload_checkpoints": "offloaded checkpoints",
            "method.name": "QLoRA"}.get(path, path)


def _apply(config: RunConfig, changes: dict[str, Any]) -> Optional[RunConfig]:
    try:
        cfg = config
        for k, v in changes.items():
            cfg = cfg.replace(k, v)
        return cfg
    except Exception:  # a change this config cannot take (e.g. method not registered)
        return None


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"
