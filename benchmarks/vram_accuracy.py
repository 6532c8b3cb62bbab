"""VRAM estimator accuracy: the studio's estimate next to the peak its own worker measures on a GPU.

For a grid of configurations (6 public architectures from the bundled catalog, built with random
bf16 weights: Qwen2.5-0.5B, Llama-3.2-1B, Llama-3.1-8B (untied head), Gemma-2-2B (256k vocabulary,
soft-capped logits), Gemma-3-1B (262k vocabulary), Phi-3-mini (fused projections, untied head; also
cut to 6 layers as the cheap "p3s"); methods LoRA,
QLoRA, DoRA, IA3, AdaLoRA, prompt tuning, GaLore, LISA, full fine-tuning; checkpointing on/off;
standard and chunked loss; lengths 256..8192; micro-batches 1..16; padded and unpadded batches)
it trains 4 optimizer steps with the studio's worker (``studio.worker.train.main``: the measured
engine is the studio's), one process per configuration so every peak is clean, and reads the
``mem_peak_allocated`` / ``mem_peak_reserved`` the worker records (its loop resets the peak
counters after the model is loaded; the max over steps >= 2 includes the optimizer states).
The estimate is computed with default overheads (no calibration) from the run's config and the
engine's recorded decisions. Every row is checked against the workload it names: the step events'
token counts must show batch x seq tokens per micro-batch, else the row is "invalid: trained N
tokens/step, wanted M" and gets no error figure (the first H100 run measured Qwen2.5 rows that
trained one token per row: the worker read the word-level tokenizer as Qwen2's byte-level BPE).

Usage (on a GPU machine; nothing here runs on the CPU test suite):
    python benchmarks/vram_accuracy.py run --subset quick   --out results/vram    # ~8 min on an H100
    python benchmarks/vram_accuracy.py run --subset small   --out results/vram
    python benchmarks/vram_accuracy.py run --subset big     --out results/vram    # Llama-3.1-8B, Phi-3
    # 30 configurations, 4 families, in two calls of < 9 minutes each on an H100:
    python benchmarks/vram_accuracy.py run --subset grid30a --out results/vram --budget-s 420 --timeout 110
    python benchmarks/vram_accuracy.py run --subset grid30b --out results/vram --budget-s 420 --timeout 110
    python benchmarks/vram_accuracy.py run --configs q05-lora-b8s1024-gc-chunked,l1-qlora-b4s2048-gc-chunked
    python benchmarks/vram_accuracy.py list
    # a miss to explain: what is allocated at the peak, by call site (CUDA memory history)
    python benchmarks/vram_accuracy.py run --configs p3s-galore-b2s512-gc-chunked --snapshot --redo --out results/vram-why
Results accumulate across calls in OUT/results.json (keyed by configuration id; a configuration
already there as ok or invalid, with its tokens per step checked, is not run again without --redo, so repeating a call that ran out of
budget finishes the rest); OUT/results.md is
the markdown table (config, estimate, measured, error) with a summary line. Configurations that
the installed packages cannot run (no bitsandbytes for QLoRA, ...) or that the estimate says
cannot fit this GPU are recorded as skipped, with the reason. ``--budget-s`` stops launching new
configurations after that many seconds (default 450) so one call fits in ~8 minutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024 ** 3
STEPS = 4
BUILD_S = 60  # rough seconds to build one of the grid's models on an H100

MODELS = {  # short key -> catalog name
    "q05": "Qwen/Qwen2.5-0.5B",
    "l1": "meta-llama/Llama-3.2-1B",
    "l8": "meta-llama/Llama-3.1-8B",
    "g2": "google/gemma-2-2b",
    "g3": "google/gemma-3-1b-pt",
    "p3": "microsoft/Phi-3-mini-4k-instruct",
    "p3s": "microsoft/Phi-3-mini-4k-instruct",
}
# Config fields changed from the catalog's, per key: a cheap untied-head model (Phi-3-mini cut to 6 of
# its 32 layers: ~0.9B parameters, 32k vocabulary, fused qkv / gate_up projections, separate lm_head).
SHAPES: dict[str, dict[str, Any]] = {
    "p3s": {"num_hidden_layers": 6},
}

# (model, method, batch, seq, checkpointing, loss, padded, extra method fields); extra[TRAINING] holds
# training fields set explicitly (adapter_compute, preset), which the configuration id names.
TRAINING = "_training"
GRID: dict[str, list[tuple]] = {
    "quick": [
        ("q05", "lora", 8, 1024, "on", "chunked", False, {}),
        ("q05", "lora", 8, 1024, "on", "standard", False, {}),
        ("q05", "lora", 4, 1024, "off", "chunked", False, {}),
        ("l1", "lora", 8, 1024, "on", "standard", False, {}),
        ("l1", "qlora", 4, 2048, "on", "chunked", False, {}),
        ("l1", "dora", 4, 1024, "on", "chunked", False, {}),
        ("g3", "lora", 4, 2048, "on", "chunked", False, {}),
        ("g2", "lora", 2, 1024, "on", "auto", False, {}),
        ("q05", "full", 4, 512, "on", "chunked", False, {}),
        ("q05", "ia3", 8, 1024, "off", "chunked", False, {}),
        ("q05", "prompt_tuning", 4, 512, "off", "auto", False, {}),
        ("q05", "galore", 4, 512, "on", "chunked", False, {}),
    ],
    "small": [
        ("q05", "lora", 1, 256, "off", "chunked", False, {}),
        ("q05", "lora", 1, 8192, "on", "chunked", False, {}),
        ("q05", "lora", 16, 256, "off", "standard", False, {}),
        ("q05", "lora", 4, 1024, "off", "chunked", True, {}),
        ("q05", "adalora", 4, 1024, "on", "chunked", False, {}),
        ("l1", "lora", 2, 4096, "off", "chunked", False, {}),
        ("l1", "lora", 8, 512, "off", "chunked", True, {}),
        ("l1", "qlora", 16, 512, "off", "chunked", False, {}),
        ("l1", "full", 2, 1024, "on", "chunked", False, {}),
        ("l1", "lisa", 4, 1024, "on", "chunked", False, {"active_layers": 2}),
        ("g3", "qlora", 2, 4096, "on", "chunked", False, {}),
        ("g3", "lora", 8, 512, "off", "standard", False, {}),
        ("g2", "dora", 1, 2048, "on", "auto", False, {}),
        ("g2", "ia3", 4, 1024, "off", "auto", False, {}),
    ],
    "big": [
        ("l8", "lora", 4, 1024, "on", "chunked", False, {}),
        ("l8", "lora", 4, 1024, "on", "standard", False, {}),
        ("l8", "lora", 2, 2048, "off", "chunked", False, {}),
        ("l8", "lora", 1, 8192, "on", "chunked", False, {}),
        ("l8", "qlora", 4, 1024, "on", "chunked", False, {}),
        ("l8", "qlora", 8, 2048, "on", "chunked", True, {}),
        ("l8", "qlora", 16, 512, "on", "standard", False, {}),
        ("l8", "dora", 2, 1024, "on", "chunked", False, {}),
        ("l8", "ia3", 4, 1024, "on", "chunked", False, {}),
        ("l8", "prompt_tuning", 1, 1024, "on", "auto", False, {}),
        ("l8", "galore", 1, 512, "on", "chunked", False, {}),
        ("l8", "full", 1, 256, "on", "chunked", False, {}),
        ("p3", "lora", 4, 1024, "on", "chunked", False, {}),
        ("p3", "qlora", 4, 2048, "off", "chunked", False, {}),
    ],
}
# 30 configurations over 4 architecture families (Qwen2 tied 152k vocabulary, Llama tied 128k,
# Gemma-3 262k vocabulary, Phi-3 untied head), in two halves that each fit one ~9-minute call on an
# H100: each half builds only two models, and within a model the cheapest configurations come first
# so a half cut short by --budget-s still reports the most rows.
GRID["grid30a"] = [
    ("q05", "prompt_tuning", 1, 256, "off", "auto", False, {}),
    ("q05", "lora", 1, 256, "off", "chunked", False, {}),
    ("q05", "ia3", 4, 512, "off", "chunked", False, {}),
    ("q05", "galore", 4, 512, "on", "chunked", False, {}),
    ("q05", "full", 4, 512, "on", "chunked", False, {}),
    ("q05", "lora", 16, 256, "off", "standard", False, {}),
    ("q05", "lora", 8, 1024, "on", "chunked", False, {}),
    ("q05", "lora", 8, 1024, "on", "standard", False, {}),
    ("q05", "lora", 4, 1024, "off", "chunked", False, {}),
    # the same with PEFT's fp32 adapter compute: what the engine's bf16 autocast saves, measured
    ("q05", "lora", 4, 1024, "off", "chunked", False, {TRAINING: {"adapter_compute": "fp32"}}),
    ("l1", "lora", 4, 512, "off", "chunked", False, {}),
    ("l1", "dora", 4, 1024, "on", "chunked", False, {}),
    ("l1", "lora", 8, 1024, "on", "standard", False, {}),
    ("l1", "qlora", 4, 2048, "on", "chunked", False, {}),
    ("l1", "lora", 2, 4096, "off", "chunked", False, {}),
]
GRID["grid30b"] = [
    ("g3", "ia3", 2, 512, "off", "chunked", False, {}),
    ("g3", "prompt_tuning", 2, 512, "off", "auto", False, {}),
    ("g3", "lora", 4, 512, "off", "standard", False, {}),
    ("g3", "full", 2, 512, "on", "chunked", False, {}),
    # checkpointing 'auto' under the memory-saver preset: on whatever the budget
    ("g3", "lora", 8, 512, "auto", "standard", False, {TRAINING: {"preset": "memory_saver"}}),
    ("g3", "lora", 4, 2048, "on", "chunked", False, {}),
    ("g3", "qlora", 2, 4096, "on", "chunked", False, {}),
    ("g3", "lora", 1, 8192, "on", "chunked", False, {}),
    ("p3s", "lora", 1, 256, "off", "standard", False, {}),
    ("p3s", "ia3", 16, 256, "on", "chunked", False, {}),
    ("p3s", "galore", 2, 512, "on", "chunked", False, {}),
    ("p3s", "dora", 2, 1024, "on", "chunked", False, {}),
    ("p3s", "lora", 4, 1024, "on", "chunked", False, {}),
    ("p3s", "lora", 8, 1024, "on", "standard", False, {}),
    ("p3s", "qlora", 4, 2048, "off", "chunked", False, {}),
]
GRID["grid30"] = GRID["grid30a"] + GRID["grid30b"]
# The engine as users get it: runs of 30+ steps on CUDA compile their decoder layers (inductor
# recomputes pointwise work, so a compiled step keeps less than the eager one). compile 'on' makes the
# grid's 4-step runs compile too; the first step includes the compile.
C = {TRAINING: {"compile": "on"}}
GRID["compiled_a"] = [
    ("q05", "lora", 4, 1024, "off", "chunked", False, C),
    ("q05", "lora", 8, 1024, "on", "chunked", False, C),
    ("l1", "lora", 4, 1024, "off", "chunked", False, C),
    ("l1", "lora", 8, 512, "off", "chunked", True, C),
    ("l1", "qlora", 4, 2048, "on", "chunked", False, C),
]
GRID["compiled_b"] = [
    ("g3", "lora", 4, 512, "off", "standard", False, C),
    ("g3", "lora", 4, 2048, "on", "chunked", False, C),
    ("p3s", "lora", 4, 1024, "off", "chunked", False, C),
    ("p3s", "qlora", 4, 2048, "on", "chunked", False, C),
]
GRID["compiled_8b"] = [
    ("l8", "lora", 4, 1024, "off", "chunked", False, C),
    ("l8", "qlora", 4, 1024, "off", "chunked", False, C),
    ("l8", "lora", 4, 1024, "auto", "chunked", False, {TRAINING: {"compile": "on", "preset": "memory_saver"}}),
]
GRID["compiled"] = GRID["compiled_a"] + GRID["compiled_b"] + GRID["compiled_8b"]
# Configurations the estimator was NOT fitted on (grid v3 fitted the compiled backward and the
# expandable-segment slack): measured after the fit, they show whether it generalises.
GRID["holdout"] = [
    ("q05", "lora", 4, 2048, "on", "chunked", False, C),
    ("q05", "lora", 4, 512, "on", "standard", False, {}),
    ("l1", "lora", 4, 1024, "on", "standard", False, C),
    ("l1", "dora", 2, 2048, "on", "chunked", False, C),
    ("l1", "full", 2, 1024, "on", "chunked", False, {}),
    ("p3s", "lora", 8, 512, "on", "chunked", False, C),
]


def config_id(spec: tuple) -> str:
    model, method, b, s, gc, loss, padded, extra = spec
    tail = "-padded" if padded else ""
    training = extra.get(TRAINING, {})
    if training.get("adapter_compute") == "fp32":
        tail += "-fp32"  # PEFT's fp32 adapter compute, next to the engine's default (autocast)
    if training.get("compile") == "on":
        tail += "-compiled"
    mode = "msaver" if training.get("preset") == "memory_saver" and gc == "auto" else ("gc" if gc == "on" else "nogc")
    return f"{model}-{method}-b{b}s{s}-{mode}-{loss}{tail}"


def all_specs() -> dict[str, tuple]:
    return {config_id(s): s for s in GRID["all"]}


# Every configuration once (grid30 repeats a few of quick's and small's).
GRID["all"] = list({config_id(s): s for s in GRID["quick"] + GRID["small"] + GRID["big"] + GRID["grid30"]
                    + GRID["compiled"] + GRID["holdout"]}.values())


# ---------------------------------------------------------------------------------------- models
def model_config(key: str) -> dict[str, Any]:
    """The catalog's config.json for this key, with the key's SHAPES changes applied."""
    from studio.core.models import catalog_dir

    name = MODELS[key]
    raw = next(json.loads(p.read_text()) for p in catalog_dir().glob("*.json")
               if json.loads(p.read_text()).get("_name_or_path") == name)
    raw = dict(raw)
    if "text_config" in raw:
        raw["text_config"] = {**raw["text_config"], **SHAPES.get(key, {})}
    else:
        raw.update(SHAPES.get(key, {}))
    return raw


def model_facts(key: str) -> Any:
    from studio.core.models import facts_from_config

    return facts_from_config(model_config(key), name=MODELS[key])


def build_model(root: Path, key: str) -> Path:
    """Random bf16 weights from the catalog config, a WordLevel tokenizer ("w<id>"), saved like a
    hub folder so the worker loads it as a user's model (and QLoRA quantizes it at load). The folder
    is only marked done once the worker's own tokenizer loading gives one token per word: a
    tokenizer the worker reads differently would train on other lengths than the grid names."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from wordlevel import save_wordlevel_tokenizer

    out = root / "models" / key
    if (out / "done").exists():
        return out
    raw = model_config(key)
    text = dict(raw.get("text_config") or raw)
    model_type = text.pop("model_type")
    for k in ("_name_or_path", "architectures", "torch_dtype"):
        text.pop(k, None)
    vocab = text["vocab_size"]
    cfg = AutoConfig.for_model(model_type, **text, pad_token_id=vocab - 2, eos_token_id=vocab - 1,
                               bos_token_id=vocab - 1)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    save_wordlevel_tokenizer(out, vocab)
    check_tokenizer(out, vocab)
    (out / "done").write_text("ok")
    return out


def check_tokenizer(model_dir: Path, vocab: int) -> None:
    """Raise unless the worker's tokenizer loading encodes "w<i> ..." to exactly [i, ...]."""
    from studio.core.config import RunConfig
    from studio.worker.modeling import load_tokenizer

    tok = load_tokenizer(RunConfig.from_dict({"model": {"source": "local", "path": str(model_dir)}}))
    want = [0, 1, 7, vocab // 2, vocab - 4]
    got = tok(" ".join(f"w{i}" for i in want), add_special_tokens=False)["input_ids"]
    if list(got) != want:
        raise RuntimeError(f"{model_dir}: the worker's tokenizer ({type(tok).__name__}) encodes "
                           f"{len(want)} words as {list(got)[:8]}, not {want}; the benchmark's data would "
                           "not have the token counts it names")


def write_data(root: Path, key: str, seq: int, rows: int, padded: bool) -> Path:
    """Text rows of exactly ``seq`` tokens with EOS (or, padded, of seq, seq-32, seq-64, seq-96)."""
    import random

    vocab = model_facts(key).vocab_size - 3
    path = root / "data" / f"{key}-s{seq}-{'padded' if padded else 'fixed'}-{rows}.jsonl"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seq)
    with open(path, "w") as f:
        for i in range(rows):
            n = seq - (32 * (i % 4) if padded else 0)
            f.write(json.dumps({"text": " ".join(f"w{rng.randrange(vocab)}" for _ in range(max(1, n - 1)))}) + "\n")
    return path


def run_config(spec: tuple, model_dir: Path, data: Path, runs: Path) -> dict[str, Any]:
    model, method, b, s, gc, loss, padded, extra = spec
    method_cfg = {"name": method, **{k: v for k, v in extra.items() if k != TRAINING}}
    if method in ("lora", "qlora", "dora"):
        method_cfg.update(r=16, alpha=32, dropout=0.0, target_modules="all-linear")
    # compile off: a 4-step run never repays a compile ('auto' would say off too); the estimate
    # describes the uncompiled step.
    training = {"compile": "off", **extra.get(TRAINING, {})}
    return {
        "name": config_id(spec),
        "model": {"source": "local", "path": str(model_dir)},
        "data": {"source": "file", "path": str(data), "format": "text", "dedup": False, "add_eos": True,
                 "train_on": "all"},
        "method": method_cfg,
        "training": {"batch_size": b, "grad_accum": 1, "max_seq_len": s, "max_steps": STEPS, "logging_steps": 1,
                     "gradient_checkpointing": gc, "loss_impl": loss, "precision": "bf16", "device": "cuda",
                     "warmup_ratio": 0.0, "lr_scheduler": "constant", "eval_steps": 0, "save_steps": 0,
                     "learning_rate": 1e-5, **training},
    }


# ---------------------------------------------------------------------------------------- child
def child(run_dir: str) -> int:
    """One configuration in this process: the studio's worker, with the final save skipped."""
    from studio.worker.engine import configure_allocator

    # The worker's own entry point (studio/worker/main.py) picks the CUDA allocator before torch
    # touches the GPU; this child calls train.main directly, so it must too (grid30-v2 ran without
    # it: every row recorded PyTorch's default allocator, not the worker's expandable segments).
    configure_allocator()
    import studio.worker.saving as saving
    from studio.worker.train import main as worker_main

    saving.save_trained = lambda *a, **k: Path(run_dir) / "adapter"  # writing 16 GB measures nothing
    if not os.environ.get(SNAPSHOT_ENV):
        return worker_main(run_dir)
    import torch

    torch.cuda.memory._record_memory_history(max_entries=SNAPSHOT_ENTRIES)
    rc = worker_main(run_dir)
    top = peak_allocations(torch.cuda.memory._snapshot())
    torch.cuda.memory._record_memory_history(enabled=None)
    (Path(run_dir) / "peak_allocations.json").write_text(json.dumps(top, indent=1))
    return rc


SNAPSHOT_ENV = "STUDIO_VRAM_SNAPSHOT"
SNAPSHOT_ENTRIES = 2_000_000


def peak_allocations(snapshot: dict[str, Any], top: int = 15) -> list[dict[str, Any]]:
    """What was allocated at the allocated-memory peak, grouped by the first call site outside
    torch (a CUDA memory-history snapshot replayed: alloc / free_completed events)."""
    trace = next((t for t in snapshot.get("device_traces", []) if t), [])
    cur = peak = 0
    peak_at = -1
    for i, e in enumerate(trace):
        if e["action"] == "alloc":
            cur += e["size"]
        elif e["action"] == "free_completed":
            cur -= e["size"]
        if cur > peak:
            peak, peak_at = cur, i
    live: dict[int, dict[str, Any]] = {}
    for e in trace[:peak_at + 1]:
        if e["action"] == "alloc":
            live[e["addr"]] = e
        elif e["action"] == "free_completed":
            live.pop(e["addr"], None)
    groups: dict[str, list[int]] = {}
    for e in live.values():
        frames = e.get("frames") or []
        site = next((f for f in frames if "/torch/" not in f["filename"]), frames[0] if frames else None)
        key = f"{site['filename'].split('site-packages/')[-1]}:{site['line']} {site['name']}" if site else "?"
        groups.setdefault(key, []).append(e["size"])
    rows = sorted(({"site": k, "bytes": sum(v), "tensors": len(v)} for k, v in groups.items()),
                  key=lambda r: -r["bytes"])
    # allocations before recording started (none: it starts before the model loads) are not seen
    return [{"site": "(traced peak)", "bytes": peak, "tensors": len(live)}] + rows[:top]


def tokens_per_step(events: list[dict[str, Any]]) -> list[int]:
    """Real tokens trained per optimizer step, from the running count in the step events."""
    steps = sorted((e for e in events if e.get("type") == "step" and "tokens" in e), key=lambda e: e["step"])
    per_step: list[int] = []
    last_step, last_tokens = 0, 0
    for e in steps:
        n = int(e["step"]) - last_step
        per_step.append((int(e["tokens"]) - last_tokens) // max(1, n))
        last_step, last_tokens = int(e["step"]), int(e["tokens"])
    return per_step


def token_check(events: list[dict[str, Any]], batch: int, seq: int, padded: bool) -> str:
    """Empty when every step trained batch x seq tokens (grad_accum is 1); else why the row is invalid.

    The step events' ``tokens`` is the running count of real (non-padding) tokens. Unpadded rows
    are exactly ``seq`` tokens each; padded ones are seq, seq-32, seq-64 or seq-96 tokens.
    """
    per_step = tokens_per_step(events)
    if not per_step:
        return "invalid: no step events with token counts"
    want = batch * seq
    low = batch * max(1, seq - 96) if padded else want
    bad = [n for n in per_step if not low <= n <= want]
    if not bad:
        return ""
    wanted = f"{want}" if not padded else f"{low}..{want}"
    return f"invalid: trained {bad[0]} tokens/step, wanted {wanted} ({batch} x {seq})"


# ---------------------------------------------------------------------------------------- parent
def skip_reason(spec: tuple) -> str:
    method = spec[1]
    if method in ("qlora", "qdora", "qr_adaptor") and importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    try:
        from studio.core.methods import method_names

        if method not in method_names():
            return f"method {method!r} is not offered by this studio build"
    except ImportError as e:
        return f"studio.core.methods: {e}"
    return ""


def estimate_for(run_dir: Path) -> Any:
    from studio.core.models import inspect_model
    from studio.core.runs import Run
    from dataclasses import replace

    from studio.core.vram import Overheads, estimate, machine_here
    from studio.core.vram.calibration import _engine_config, engine_recipe

    run = Run(run_dir)
    config = _engine_config(run)  # the worker's recorded decisions (checkpointing, loss, kernels)
    return estimate(config, inspect_model(config.model.path), machine=replace(machine_here(), overheads=Overheads()),
                    recipe=engine_recipe(run))


def gpu_total() -> Optional[int]:
    from studio.core.gpu import gpu_snapshot

    snap = gpu_snapshot()
    return snap[0].mem_total if snap else None


def _run(args: argparse.Namespace) -> int:
    import yaml

    from dataclasses import replace

    from studio.core.vram import Overheads, estimate, machine_here
    from studio.core.vram.calibration import measured_peaks

    t_start = time.time()
    root = Path(args.root)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = all_specs()
    if args.configs:
        ids = [c.strip() for c in args.configs.split(",") if c.strip()]
        unknown = [i for i in ids if i not in specs]
        if unknown:
            print(f"unknown configuration ids: {', '.join(unknown)} (see `list`)", file=sys.stderr)
            return 2
    else:
        ids = [config_id(s) for s in GRID[args.subset]]
    ids = list(dict.fromkeys(ids))
    results_path = out / "results.json"
    results: dict[str, dict] = {}
    if results_path.exists():
        results = {r["id"]: r for r in json.loads(results_path.read_text())}
    total = gpu_total()
    env = dict(os.environ, STUDIO_HOME=str(root / "home"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for cid in ids:
        spec = specs[cid]
        model, method, b, s, gc, loss, padded, extra = spec
        row: dict[str, Any] = {"id": cid, "model": MODELS[model], "method": method, "batch": b, "seq": s,
                               "checkpointing": gc, "loss": loss, "padded": padded, "extra": extra}
        done = results.get(cid, {})  # rows from before the token check (no tokens_per_step) run again
        if not args.redo and done.get("status") in ("ok", "invalid") and "tokens_per_step" in done:
            print(f"[{cid}] already measured in {results_path} (--redo to measure again)", flush=True)
            continue
        elapsed = time.time() - t_start
        # A model still to build costs about a minute more (random init + save): start it only with room.
        needs_build = not (root / "models" / model / "done").exists()
        if elapsed > args.budget_s - (BUILD_S if needs_build else 0):
            print(f"[{cid}] not started: time budget of {args.budget_s}s used (run the same command again "
                  "to measure the rest)", flush=True)
            continue
        reason = skip_reason(spec)
        if not reason and total is None:
            reason = "no NVIDIA GPU visible"
        if not reason:
            # A config-only estimate first: do not launch what cannot fit this GPU.
            pre_cfg = run_config(spec, Path("."), Path("."), root)
            pre_cfg["model"] = {"source": "hub", "path": MODELS[model]}
            from studio.core.config import RunConfig

            pre = estimate(RunConfig.from_dict(pre_cfg), model_facts(model),
                           machine=replace(machine_here(), overheads=Overheads()))
            if pre.device_used > 0.97 * total:
                reason = f"estimated {pre.device_used / GIB:.1f} GiB > this GPU's {total / GIB:.1f} GiB"
        if reason:
            row.update(status="skipped", reason=reason)
            results[cid] = row
            print(f"[{cid}] skipped: {reason}", flush=True)
            _write(out, results)
            continue
        t0 = time.time()
        built = (root / "models" / model / "done").exists()
        prep = built or subprocess.run([sys.executable, __file__, "build", "--root", str(root), "--model", model],
                                       env=env, capture_output=True, text=True, timeout=900)
        if prep is not True and prep.returncode != 0:
            row.update(status="error", reason="building the model failed: " + (prep.stderr or prep.stdout)[-800:])
            results[cid] = row
            _write(out, results)
            continue
        model_dir = root / "models" / model
        data = write_data(root, model, s, rows=max(16, b * (STEPS + 1)), padded=padded)
        run_dir = root / "runs" / f"{cid}-{int(time.time())}"
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(run_config(spec, model_dir, data, root)))
        child_env = dict(env, **({SNAPSHOT_ENV: "1"} if args.snapshot else {}))
        try:
            proc = subprocess.run([sys.executable, __file__, "child", str(run_dir)], env=child_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  timeout=args.timeout)
            rc, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired:
            rc, stderr = -1, f"timed out after {args.timeout}s"
        events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()] \
            if (run_dir / "events.jsonl").exists() else []
        measured = measured_peaks(events)
        errors = [e for e in events if e.get("type") == "error"]
        row["wall_s"] = round(time.time() - t0, 1)
        try:
            est = estimate_for(run_dir)
        except Exception as e:  # the estimate must be reported even when the run failed, if possible
            est = None
            row["estimate_error"] = f"{type(e).__name__}: {e}"
        if est is not None:
            row.update(est_allocated=est.peak_allocated, est_reserved=est.peak_reserved,
                       est_device=est.device_used, est_phase=est.peak_phase, est_breakdown=est.breakdown,
                       est_gc=est.setup.gc, est_loss=est.setup.loss)
        plan = next((e for e in events if e.get("type") == "plan"), {})
        row["engine_choices"] = plan.get("choices", {})
        if (run_dir / "peak_allocations.json").exists():
            row["peak_allocations"] = json.loads((run_dir / "peak_allocations.json").read_text())
        invalid = token_check(events, b, s, padded) if rc == 0 else ""
        row["tokens_per_step"] = tokens_per_step(events)
        if measured is not None and measured.steps >= 2 and rc == 0 and invalid:
            # Measured, but not the workload the row names: keep the numbers, report no error.
            row.update(status="invalid", reason=invalid, measured_allocated=measured.peak_allocated,
                       measured_reserved=measured.peak_reserved, steps=measured.steps)
        elif measured is not None and measured.steps >= 2 and rc == 0:
            row.update(status="ok", measured_allocated=measured.peak_allocated,
                       measured_reserved=measured.peak_reserved, steps=measured.steps)
            if est is not None:
                row["error_allocated"] = (est.peak_allocated - measured.peak_allocated) / measured.peak_allocated
                row["error_reserved"] = (est.peak_reserved - measured.peak_reserved) / max(1, measured.peak_reserved)
        else:
            kind = errors[-1].get("kind") if errors else ""
            row.update(status="oom" if kind == "oom" else "error",
                       reason=(errors[-1]["message"] if errors else "") or stderr[-800:]
                       or ("no GPU memory peaks in the step events" if rc == 0 else f"exit code {rc}"))
        results[cid] = row
        _write(out, results)
        err = row.get("error_allocated")
        print(f"[{cid}] {row['status']}: estimate {row.get('est_allocated', 0) / GIB:.2f} GiB, measured "
              f"{row.get('measured_allocated', 0) / GIB:.2f} GiB"
              + (f", error {100 * err:+.1f}%" if err is not None else "") + f" ({row['wall_s']}s)", flush=True)
    print(table(list(results.values())))
    return 0


def _write(out: Path, results: dict[str, dict]) -> None:
    rows = list(results.values())
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    (out / "results.md").write_text(table(rows))


def table(rows: list[dict]) -> str:
    head = ("| config | est. alloc GiB | measured alloc GiB | error | est. reserved GiB | measured reserved GiB "
            "| error | peak phase | status |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        def g(key: str) -> str:
            return f"{r[key] / GIB:.2f}" if r.get(key) else "—"

        def pct(key: str) -> str:
            return f"{100 * r[key]:+.1f}%" if r.get(key) is not None else "—"

        reason = str(r.get("reason", ""))
        status = r["status"] if r["status"] == "ok" else \
            reason[:80] if r["status"] == "invalid" else f"{r['status']}: {reason[:80]}"
        lines.append(f"| {r['id']} | {g('est_allocated')} | {g('measured_allocated')} | {pct('error_allocated')} "
                     f"| {g('est_reserved')} | {g('measured_reserved')} | {pct('error_reserved')} "
                     f"| {r.get('est_phase', '—')} | {status} |")
    errs = [abs(r["error_allocated"]) for r in rows if r.get("error_allocated") is not None]
    if errs:
        within = sum(e <= 0.05 for e in errs)
        lines.append("")
        lines.append(f"{len(errs)} measured: median |error| {100 * statistics.median(errs):.1f}%, "
                     f"max {100 * max(errs):.1f}%, within ±5%: {within}/{len(errs)}")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a subset or a list of configurations")
    r.add_argument("--subset", choices=sorted(GRID), default="quick")
    r.add_argument("--configs", help="comma-separated configuration ids (see `list`); overrides --subset")
    r.add_argument("--root", default="/tmp/vram-bench", help="models, data and run folders go here")
    r.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vram"))
    r.add_argument("--budget-s", type=float, default=450.0, help="stop starting new configurations after this")
    r.add_argument("--timeout", type=float, default=300.0, help="seconds one configuration may take")
    r.add_argument("--redo", action="store_true",
                   help="measure configurations again that OUT/results.json already holds as ok or invalid")
    r.add_argument("--snapshot", action="store_true",
                   help="record CUDA memory history in each run and store what was allocated at the peak, by "
                        "call site, in the row (peak_allocations); slower, for diagnosing a miss")
    sub.add_parser("list", help="print the configuration ids by subset")
    b = sub.add_parser("build", help=argparse.SUPPRESS)
    b.add_argument("--root", required=True)
    b.add_argument("--model", required=True)
    c = sub.add_parser("child", help=argparse.SUPPRESS)
    c.add_argument("run_dir")
    args = p.parse_args()
    if args.cmd == "list":
        for name in ("quick", "small", "big", "grid30a", "grid30b"):
            print(f"{name}:")
            for spec in GRID[name]:
                print(f"  {config_id(spec)}")
        return 0
    if args.cmd == "build":
        build_model(Path(args.root), args.model)
        return 0
    if args.cmd == "child":
        return child(args.run_dir)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
