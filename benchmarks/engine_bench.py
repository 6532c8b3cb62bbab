"""Training-engine benchmark: the plain transformers+peft recipe against the studio, same GPU, same run.

Arms (each configuration runs in its own process, arms interleaved):
  plain   the recipe tutorials teach (shared/research/measured-baseline-h100.md): bf16 model, SDPA,
          peft LoRA all-linear r16/a32, gradient checkpointing (use_reentrant=False), standard loss,
          torch AdamW; QLoRA through prepare_model_for_kbit_training. Padding to the longest row.
  tuned   the plain recipe tuned by hand: checkpointing off where it fits, Liger kernels.
  studio  the studio's worker with the config a user gets by default (engine choices automatic).
  saver   the studio's worker with the memory-saver preset.

Models are built from public configs with random bf16 weights, saved once, then loaded from disk as a
user would. Workloads: "fixed" (every row exactly 1024 tokens, 4 rows a step) and "chat" (lognormal
lengths, median ~350, clipped 32..2048, 4 rows a step). Rows draw their words from a 2,000-word
sub-vocabulary, so the loss has something to learn (ln 128k -> ln 2k) and diverging engines show.

Every arm trains on the same examples: the HF arms take their micro-batches from the studio's data
pipeline and batcher (padded, attention mask, no length grouping), so on the fixed workload each
step sees exactly the rows the studio's step sees, and "loss vs plain" compares step by step.
STUDIO_BENCH_DEVICE=cpu with the tiny T0 shape checks the whole harness on a CPU in a minute.

Usage (on a GPU machine):
  python benchmarks/engine_bench.py run --models S1 --methods lora --workloads fixed --arms plain,studio \
      --root /tmp/bench --out results/
Prints a markdown table last; writes results.json beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {
    "S0": dict(name="Qwen2.5-0.5B", model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
               num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
               rope_theta=1000000.0, max_position_embeddings=32768, rms_norm_eps=1e-6),
    "S1": dict(name="Llama-3.2-1B", model_type="llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True,
               rope_theta=500000.0, max_position_embeddings=131072, rms_norm_eps=1e-5, head_dim=64),
    "T0": dict(name="tiny-llama", model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, vocab_size=4096, tie_word_embeddings=True,
               rope_theta=10000.0, max_position_embeddings=4096, rms_norm_eps=1e-5),
    "S3": dict(name="Llama-3.1-8B", model_type="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
               rope_theta=500000.0, max_position_embeddings=131072, rms_norm_eps=1e-5, head_dim=128),
}
BATCH = 4
FIXED_LEN = 1024
CHAT_MAX = 2048
# The studio's first steps include compiling its layers (runs of 30+ steps compile).
WARMUP, TIMED = (int(x) for x in os.environ.get("STUDIO_BENCH_STEPS", "10,20").split(","))
SUBVOCAB = 2000
DEVICE = os.environ.get("STUDIO_BENCH_DEVICE", "cuda")
H100_BF16_PEAK = 989e12


# ----------------------------------------------------------------------------------------- building
def build(root: Path, model_id: str) -> Path:
    """Random-weight model + WordLevel tokenizer ("w<id>" -> id) saved like a hub folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from wordlevel import save_wordlevel_tokenizer

    out = root / model_id
    if (out / "done").exists():
        return out
    shape = dict(SHAPES[model_id])
    shape.pop("name")
    model_type = shape.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **shape, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    del model
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    save_wordlevel_tokenizer(out, cfg.vocab_size)
    (out / "done").write_text("ok")
    return out


def lengths(workload: str, n: int, seed: int = 0) -> list[int]:
    import random

    rng = random.Random(seed)
    if workload == "fixed":
        return [FIXED_LEN] * n
    return [int(min(CHAT_MAX, max(32, rng.lognormvariate(math.log(350), 0.9)))) for _ in range(n)]


def write_dataset(root: Path, model_id: str, workload: str, rows: int) -> Path:
    """Text rows whose token count is exactly the target length (the worker appends EOS)."""
    import random

    vocab = min(SUBVOCAB, SHAPES[model_id]["vocab_size"] - 3)
    path = root / f"data-{model_id}-{workload}.jsonl"
    if path.exists():
        return path
    rng = random.Random(1)
    with open(path, "w") as f:
        for n in lengths(workload, rows):
            f.write(json.dumps({"text": " ".join(f"w{rng.randrange(vocab)}" for _ in range(n - 1))}) + "\n")
    return path


# ----------------------------------------------------------------------------------------- HF arms
def studio_batches(model_dir: Path, data: Path, method: str, workload: str):
    """The studio's own micro-batches for this workload, padded with a mask and never grouped: the
    rows each studio step trains on, in the same order."""
    from studio.core.config import RunConfig
    from studio.worker.batching import Batcher
    from studio.worker.data import prepare_data
    from studio.worker.modeling import load_tokenizer

    cfg = RunConfig.model_validate(bench_config(model_dir, data, method, workload, "plain"))
    tok = load_tokenizer(cfg)
    prepared = prepare_data(cfg, tok, log=lambda s: None)
    t = cfg.training
    batcher = Batcher(prepared.train, t.batch_size, t.grad_accum, t.seed, tok.pad_token_id, attention_mask=True)
    return [micro[0] for _e, _p, micro in batcher.steps(WARMUP + TIMED)]


def hf_arm(model_dir: Path, data: Path, method: str, workload: str, arm: str) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    t_launch = time.time()
    kw = dict(torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        kw["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    if arm == "tuned":
        from liger_kernel.transformers import AutoLigerKernelForCausalLM as Auto
    else:
        from transformers import AutoModelForCausalLM as Auto
    model = Auto.from_pretrained(model_dir, device_map={"": DEVICE if DEVICE == "cpu" else 0}, **kw)
    use_gc = arm == "plain"  # tuned: every benchmarked shape fits an 80 GB card without it
    if method == "qlora" and arm == "plain":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM",
                      use_dora=(method == "dora"))
    model = get_peft_model(model, lcfg)
    if use_gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batches = studio_batches(model_dir, data, method, workload)
    cuda = DEVICE == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, useful, padded, losses = [], [], [], []
    first_step_at = None
    for step, mb in enumerate(batches):
        mask = mb.attention_mask if mb.attention_mask is not None else torch.ones_like(mb.input_ids)
        ids, mask, labels = (x.to(DEVICE) for x in (mb.input_ids, mask, mb.labels))
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if first_step_at is None:
            first_step_at = time.time()
        losses.append(out.loss.item())
        if step >= WARMUP:
            times.append(dt)
            useful.append(mb.useful_tokens)
            padded.append(mb.tokens)
    peak = (torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()) if cuda else (0, 0)
    return _summarise(times, useful, padded, losses, first_step_at - t_launch, *peak)


def _summarise(times, useful, padded, losses, ttfs, peak_alloc, peak_res) -> dict:
    med = statistics.median(times)
    idx = times.index(med) if med in times else 0
    tok_s = statistics.median([p / t for p, t in zip(padded, times)])
    useful_s = statistics.median([u / t for u, t in zip(useful, times)])
    return dict(step_s=med, tokens_per_s=tok_s, useful_tokens_per_s=useful_s, peak_alloc_gib=peak_alloc / 2**30,
                peak_reserved_gib=peak_res / 2**30, time_to_first_step_s=ttfs, first_loss=losses[0],
                last_loss=losses[-1], losses=losses, _idx=idx)


# ----------------------------------------------------------------------------------------- studio arms
def bench_config(model_dir: Path, data: Path, method: str, workload: str, arm: str) -> dict:
    cfg = {
        "name": f"bench-{arm}",
        "model": {"source": "local", "path": str(model_dir)},
        "data": {"source": "file", "path": str(data), "format": "text", "dedup": False, "validation_split": 0.0},
        "method": {"name": "qlora" if method == "qlora" else ("dora" if method == "dora" else "lora"),
                   "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
        "training": {"batch_size": BATCH, "grad_accum": 1, "max_steps": WARMUP + TIMED, "warmup_ratio": 0.0,
                     "max_seq_len": FIXED_LEN if workload == "fixed" else CHAT_MAX, "logging_steps": 1,
                     "precision": "bf16", "device": DEVICE, "lr_scheduler": "constant", "learning_rate": 2e-4},
    }
    if arm == "saver":
        cfg["training"]["preset"] = "memory_saver"
    if arm == "studio-eager":  # the default with compile off: what the compile adds
        cfg["training"]["compile"] = "off"
    return cfg


def studio_arm(model_dir: Path, data: Path, method: str, workload: str, arm: str, work: Path) -> dict:
    """Run the studio's real worker process on the same data and read its events."""
    import yaml

    run_dir = work / f"run-{model_dir.name}-{method}-{workload}-{arm}-{int(time.time() * 1000)}"
    run_dir.mkdir(parents=True)
    cfg = bench_config(model_dir, data, method, workload, arm)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    t_launch = time.time()
    proc = subprocess.run([sys.executable, "-m", "studio", "--worker", "train", str(run_dir)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    steps = [e for e in events if e["type"] == "step"]
    if proc.returncode != 0 or len(steps) < WARMUP + 2:
        err = [e for e in events if e["type"] == "error"]
        tail = (run_dir / "worker.log").read_text()[-3000:] if (run_dir / "worker.log").exists() else ""
        raise RuntimeError(f"studio worker failed (rc={proc.returncode}): {err[-1]['message'] if err else ''}\n{tail}")
    timed = steps[WARMUP:]
    plan = next((e for e in events if e["type"] == "plan"), {})
    return dict(
        step_s=statistics.median(e.get("step_time_s", 0) for e in timed),
        tokens_per_s=statistics.median(e.get("padded_tokens_per_s", e["tokens_per_s"]) for e in timed),
        useful_tokens_per_s=statistics.median(e["tokens_per_s"] for e in timed),
        peak_alloc_gib=max(e.get("mem_peak_allocated", 0) for e in steps) / 2**30,
        peak_reserved_gib=max(e.get("mem_peak_reserved", 0) for e in steps) / 2**30,
        time_to_first_step_s=steps[0]["t"] - t_launch,
        first_loss=steps[0]["loss"], last_loss=steps[-1]["loss"], losses=[e["loss"] for e in steps],
        choices=plan.get("choices", {}),
    )


# ----------------------------------------------------------------------------------------- driver
SHAPES_BY_DIR: dict[str, dict] = {}


def lora_flops_per_token(model_id: str, seq: int) -> float:
    s = SHAPES[model_id]
    h, f, L, V = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
    hd = s.get("head_dim", h // s["num_attention_heads"])
    q, kv = s["num_attention_heads"] * hd, s["num_key_value_heads"] * hd
    n_mm = L * (h * q + 2 * h * kv + q * h + 3 * h * f) + V * h
    fwd = 2 * n_mm + 2 * seq * q * L  # causal attention counted half
    return 2 * fwd  # LoRA: forward + input gradients


def one(args) -> None:
    root = Path(args.root)
    model_dir = root / args.model
    SHAPES_BY_DIR[str(model_dir)] = SHAPES[args.model]
    data = write_dataset(root, args.model, args.workload, 400)
    if args.arm in ("plain", "tuned"):
        res = hf_arm(model_dir, data, args.method, args.workload, args.arm)
    else:
        res = studio_arm(model_dir, data, args.method, args.workload, args.arm, root / "runs")
    print("RESULT " + json.dumps(res), flush=True)


def run(args) -> None:
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for model_id in args.models.split(","):
        t0 = time.time()
        build(root, model_id)
        print(f"built {model_id} in {time.time() - t0:.0f}s", flush=True)
        for workload in args.workloads.split(","):
            write_dataset(root, model_id, workload, 400)
            for method in args.methods.split(","):
                for rep in range(args.repeats):
                    for arm in args.arms.split(","):
                        cmd = [sys.executable, __file__, "one", "--root", str(root), "--model", model_id,
                               "--method", method, "--workload", workload, "--arm", arm]
                        t1 = time.time()
                        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
                        row = dict(model=model_id, method=method, workload=workload, arm=arm, rep=rep,
                                   wall_s=round(time.time() - t1, 1))
                        if line:
                            row.update(json.loads(line[7:]))
                            seq = FIXED_LEN if workload == "fixed" else 350
                            row["mfu"] = row["tokens_per_s"] * lora_flops_per_token(model_id, seq) / H100_BF16_PEAK
                        else:
                            row["error"] = (p.stderr or p.stdout)[-1500:]
                        results.append(row)
                        print(json.dumps({k: v for k, v in row.items() if k not in ("choices", "losses")})[:600],
                              flush=True)
                        (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    (out / "table.md").write_text(table(results))


def engine_note(r: dict) -> str:
    """Short summary of the studio's automatic choices (or the HF arm's recipe)."""
    if r["arm"] == "plain":
        return "GC, standard loss" + (", kbit prep" if r["method"] == "qlora" else "")
    if r["arm"] == "tuned":
        return "Liger (FLCE), no GC"
    from studio.core.engine_choice import choices_from_json

    c = choices_from_json(r.get("choices", {}))

    def on(key: str) -> bool:
        return key in c and c[key].on

    parts = ["GC" if on("gradient_checkpointing") else "no GC"]
    if on("compile"):
        parts.append("compiled")
    if on("kernels"):
        parts.append("Liger")
    if "adapter_compute" in c and c["adapter_compute"].value.startswith(("bf16", "fp16")):
        parts.append("bf16 adapters")
    if on("group_by_length"):
        parts.append("grouped")
    if on("checkpoint_offload"):
        parts.append("checkpoints offloaded")
    return ", ".join(parts)


def loss_gap(r: dict, base: list[dict]) -> str:
    """Largest relative difference from the plain arm's loss at the same step (same rows per step)."""
    if r["workload"] != "fixed" or not base or "losses" not in r or "losses" not in base[0]:
        return "n/a"
    a, b = r["losses"], base[0]["losses"]
    n = min(len(a), len(b))
    return f"{max(abs(x - y) / abs(y) for x, y in zip(a[:n], b[:n])) * 100:.2f}%"


def table(results: list[dict]) -> str:
    base = {}
    for r in results:
        if r["arm"] == "plain" and "error" not in r:
            base.setdefault((r["model"], r["method"], r["workload"]), []).append(r)
    lines = ["| model | method | workload | arm | engine | tokens/s | useful tok/s | ratio (useful) | peak alloc GiB "
             "(reserved) | mem ratio | MFU | first step s | loss first→last | loss vs plain (max) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["model"], r["method"], r["workload"], r["arm"]), []).append(r)
    for (m, meth, w, arm), rows in groups.items():
        ok = [r for r in rows if "error" not in r]
        if not ok:
            lines.append(f"| {SHAPES[m]['name']} | {meth} | {w} | {arm} | failed: {rows[0]['error'][-120:]!r} "
                         "||||||||||")
            continue
        med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
        b = base.get((m, meth, w))
        ratio = med("useful_tokens_per_s") / statistics.median(x["useful_tokens_per_s"] for x in b) if b else float("nan")
        base_mem = statistics.median(x["peak_alloc_gib"] for x in b) if b else 0.0
        mem = med("peak_alloc_gib") / base_mem if base_mem else float("nan")  # CPU runs record no peak
        lines.append(
            f"| {SHAPES[m]['name']} | {meth} | {w} | {arm} | {engine_note(ok[0])} | {med('tokens_per_s'):,.0f} "
            f"| {med('useful_tokens_per_s'):,.0f} | {ratio:.2f} | {med('peak_alloc_gib'):.1f} "
            f"({med('peak_reserved_gib'):.1f}) | {mem:.2f} | {med('mfu') * 100:.1f}% | "
            f"{med('time_to_first_step_s'):.0f} | {ok[0]['first_loss']:.3f}→{ok[0]['last_loss']:.3f} | "
            f"{loss_gap(ok[0], b or [])} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--models", default="S1")
    r.add_argument("--methods", default="lora")
    r.add_argument("--workloads", default="fixed")
    r.add_argument("--arms", default="plain,tuned,studio,saver")
    r.add_argument("--repeats", type=int, default=1)
    r.add_argument("--root", default="/tmp/engine-bench")
    r.add_argument("--out", default=os.environ.get("OUT", "bench-out"))
    r.add_argument("--timeout", type=int, default=600)
    o = sub.add_parser("one")
    for a in ("--root", "--model", "--method", "--workload", "--arm"):
        o.add_argument(a, required=True)
    args = p.parse_args()
    (run if args.cmd == "run" else one)(args)


if __name__ == "__main__":
    main()
