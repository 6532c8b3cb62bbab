"""Trace the allocated bytes of the studio's real training step on the CPU, phase by phase.

The GPU grid (benchmarks/vram_accuracy.py) says how far the estimate is from the H100's peak; this
says WHY, without a GPU: it builds a small model with random bf16 weights (any architecture, any
shape ratios), runs the studio's worker (``studio.worker.train.train``) on the CPU in this process
for a few steps, and counts every tensor the step allocates (tests/core/vram_tracker.py). The
peak of each segment of a step (forward + loss, backward, gradient clipping, optimizer step) plus
the weights held before the loop is what ``torch.cuda.max_memory_allocated`` would report, and it
is printed next to the estimator's four phases for the same config (fused kernels off: Liger is
CUDA-only).

    python benchmarks/vram_cpu_trace.py --model phi3 --method galore --batch 2 --seq 128 --gc on
    python benchmarks/vram_cpu_trace.py --model gemma3_text --method full --gc on --shape vocab_size=16000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))

MIB = 1024 ** 2

# Small shapes with the ratios of the grid's models (hidden : intermediate : vocab, heads, tying).
SHAPES: dict[str, dict[str, Any]] = {
    "llama": dict(hidden_size=256, intermediate_size=1024, num_attention_heads=8, num_key_value_heads=2,
                  vocab_size=8000, tie_word_embeddings=True, head_dim=32),
    "qwen2": dict(hidden_size=224, intermediate_size=1216, num_attention_heads=7, num_key_value_heads=1,
                  vocab_size=38000, tie_word_embeddings=True),
    "gemma3_text": dict(hidden_size=288, intermediate_size=1728, num_attention_heads=4, num_key_value_heads=1,
                        head_dim=64, vocab_size=65536, tie_word_embeddings=True, sliding_window=64),
    "phi3": dict(hidden_size=384, intermediate_size=1024, num_attention_heads=4, num_key_value_heads=4,
                 vocab_size=4008, tie_word_embeddings=False),
}


def build(root: Path, model_type: str, layers: int, shape: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from wordlevel import save_wordlevel_tokenizer

    kw = {**SHAPES.get(model_type, {}), **shape, "num_hidden_layers": layers}
    vocab = kw["vocab_size"]
    cfg = AutoConfig.for_model(model_type, **kw, pad_token_id=vocab - 2, eos_token_id=vocab - 1,
                               bos_token_id=vocab - 1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    out = root / "model"
    model.save_pretrained(out, safe_serialization=True)
    save_wordlevel_tokenizer(out, vocab)
    return out, json.loads((out / "config.json").read_text())


def run_config(model_dir: Path, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    method: dict[str, Any] = {"name": args.method, **json.loads(args.method_fields)}
    if args.method in ("lora", "dora"):
        method.update(r=16, alpha=32, dropout=0.0, target_modules="all-linear")
    return {
        "model": {"source": "local", "path": str(model_dir)},
        "data": {"source": "file", "path": str(data), "format": "text", "dedup": False, "add_eos": True,
                 "train_on": "all"},
        "method": method,
        "training": {"batch_size": args.batch, "grad_accum": 1, "max_seq_len": args.seq, "max_steps": args.steps,
                     "logging_steps": 1, "gradient_checkpointing": args.gc, "loss_impl": args.loss,
                     "precision": "bf16", "device": "cpu", "warmup_ratio": 0.0, "lr_scheduler": "constant",
                     "eval_steps": 0, "save_steps": 0, "learning_rate": 1e-5, "adapter_compute": args.adapter_compute,
                     "compile": "off"},
    }


def trace(args: argparse.Namespace) -> dict[str, Any]:
    import random

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
    from vram_tracker import AllocTracker

    import studio.worker.loop as loop_mod
    import studio.worker.saving as saving
    from studio.core.config import RunConfig
    from studio.core.runs import RunStore
    from studio.worker.reporter import Reporter
    from studio.worker.train import train

    shape = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.shape)}
    root = Path(tempfile.mkdtemp(prefix="vram-trace-"))
    model_dir, raw = build(root, args.model, args.layers, shape)
    vocab = raw["vocab_size"]
    rng = random.Random(0)
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"text": " ".join(f"w{rng.randrange(vocab - 3)}" for _ in range(args.seq - 1))})
                            + "\n" for _ in range(args.batch * (args.steps + 1))))
    cfg = RunConfig.from_dict(run_config(model_dir, data, args))

    tr = AllocTracker()
    state: dict[str, Any] = {"base": None, "model": None}
    segs: dict[str, int] = {}

    def mark(label: str) -> None:
        segs[label] = max(segs.get(label, 0), tr.peak)
        tr.peak = tr.live

    orig_step = loop_mod.TrainLoop._step
    orig_loss = loop_mod.loss_sum
    orig_backward = torch.Tensor.backward

    def step(self: Any, micro: Any) -> Any:
        if state["base"] is None:
            seen = {}
            for t in list(self.model.parameters()) + list(self.model.buffers()):
                st = t.untyped_storage()
                seen[st.data_ptr()] = st.nbytes()
            state["base"] = sum(seen.values())
            tr.__enter__()
            tr.live = tr.peak = 0
        tr.peak = tr.live
        return orig_step(self, micro)

    def loss(*a: Any, **k: Any) -> Any:
        mark("before")
        out = orig_loss(*a, **k)
        mark("loss")
        return out

    def backward(self: Any, *a: Any, **k: Any) -> Any:
        out = orig_backward(self, *a, **k)
        mark("backward")
        return out

    loop_mod.TrainLoop._step = step
    loop_mod.loss_sum = loss
    torch.Tensor.backward = backward
    hooks = [register_optimizer_step_pre_hook(lambda *a: mark("clip")),
             register_optimizer_step_post_hook(lambda *a: mark("step"))]
    saving.save_trained = lambda *a, **k: root / "adapter"
    try:
        import os

        os.environ["STUDIO_HOME"] = str(root / "home")
        run = RunStore().create(cfg)
        run_dir = Path(run.path)
        run_dir.mkdir(parents=True, exist_ok=True)
        with Reporter(run_dir) as rep:
            train(cfg, rep)
    finally:
        if state["base"] is not None:
            tr.__exit__(None, None, None)
        loop_mod.TrainLoop._step = orig_step
        loop_mod.loss_sum = orig_loss
        torch.Tensor.backward = orig_backward
        for h in hooks:
            h.remove()
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]
    plan = next((e for e in events if e.get("type") == "plan"), {})
    base = state["base"] or 0
    return {"base": base, "segments": {k: base + v for k, v in segs.items()}, "config": cfg, "raw": raw,
            "choices": plan.get("choices", {})}


def estimate_for(result: dict[str, Any]) -> Any:
    from dataclasses import replace

    from studio.core.models import facts_from_config
    from studio.core.vram import STUDIO, Machine, Overheads, estimate

    zero = Machine(Overheads(cuda_context=0, cublas_workspace=0, frag_fraction=0.0, logits_slack=0.0))
    cfg = result["config"]
    gc = str(result["choices"].get("gradient_checkpointing", "")).split(" ")[0]
    if gc in ("on", "off"):
        cfg = cfg.replace("training.gradient_checkpointing", gc)
    return estimate(cfg, facts_from_config(result["raw"]), machine=zero, recipe=replace(STUDIO, fused_kernels=False))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="llama", help="model_type (llama, qwen2, gemma3_text, phi3, ...)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--shape", action="append", default=[], help="config field=value (JSON value), repeatable")
    p.add_argument("--method", default="lora")
    p.add_argument("--method-fields", default="{}", help="extra method fields as JSON")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--gc", default="off", choices=["on", "off"])
    p.add_argument("--loss", default="chunked", choices=["chunked", "standard"])
    p.add_argument("--adapter-compute", default="fp32", choices=["auto", "fp32"])
    p.add_argument("--steps", type=int, default=2)
    args = p.parse_args()
    r = trace(args)
    est = estimate_for(r)
    print(f"weights etc. before the loop: {r['base'] / MIB:.2f} MiB")
    print("measured peak per segment (MiB): " + ", ".join(f"{k} {v / MIB:.2f}" for k, v in r["segments"].items()))
    peak = max(r["segments"].values())
    print("estimated phases (MiB): " + ", ".join(f"{k} {v / MIB:.2f}" for k, v in est.phases.items()))
    print(f"peak: measured {peak / MIB:.2f} MiB, estimated {est.peak_allocated / MIB:.2f} MiB "
          f"({est.peak_phase}), error {100 * (est.peak_allocated - peak) / peak:+.1f}%")
    print("estimate breakdown (MiB): " + ", ".join(f"{k} {v / MIB:.2f}" for k, v in est.breakdown.items()))
    print("engine: " + "; ".join(f"{k}={str(v)[:40]}" for k, v in r["choices"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
