"""Chat and evaluation speed: base vs adapter vs merged on an 8B-shape model, adapter switches, eval throughput.

Everything is measured through the studio's own code, in this process, as the chat and eval
workers run it: studio.worker.inference loads the base (bf16 on a GPU, 4-bit for QLoRA) with a
LoRA adapter (r=16, alpha=32, all linear layers; random non-zero B matrices, so the adapter really
computes) and studio.worker.generation.stream_reply answers, streaming decode included.

Modes, one loaded model:
  base     the tuned side switched off (PEFT's disable_adapter): what "base" costs in the chat
  adapter  the tuned side, unmerged: what chatting with a run costs (and what D-LoRA switching keeps)
  merged   the adapter folded into the weights (runtime.merge, as the merged export does; QLoRA
           dequantizes first): plain-model speed
For each: time to the first token for a P-token prompt (prompt processing included) and decoding
speed (tokens after the first, per second) over N new tokens, greedy, batch 1; median of R repeats
after one warm-up. Also: loading the run, loading a second adapter and switching between the two
(set_adapter), and the eval worker's two phases on synthetic rows: validation loss (tokens scored
per second, batch B x L tokens) and greedy batched answers (generated tokens per second).

Models are built from public configs with random bf16 weights (benchmarks/engine_bench.py SHAPES;
S3 = Llama-3.1-8B) and saved once under --root.

Usage:
  python benchmarks/chat_bench.py --shape S3 --methods lora,qlora --root /tmp/chat-bench --out results/
  STUDIO_BENCH_DEVICE=cpu python benchmarks/chat_bench.py --shape T0 --methods lora   # CPU smoke check (~1 min)
Prints a markdown table last; writes chat-bench.json to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine_bench import DEVICE, SHAPES, SUBVOCAB, build  # noqa: E402


def make_run(root: Path, model_dir: Path, method: str) -> tuple[Path, Path]:
    """A run folder whose adapter/ holds random LoRA weights, and a second adapter for switching."""
    import torch

    from studio.core.config import RunConfig
    from studio.core.runs import RunStore
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, resolve_placement

    folder = root / f"run-{model_dir.name}-{method}"
    second = root / f"adapter2-{model_dir.name}"
    cfg = RunConfig.model_validate({
        "name": f"bench-{method}", "model": {"source": "local", "path": str(model_dir)},
        "method": {"name": method, "r": 16, "alpha": 32, "target_modules": "all-linear"},
        "training": {"device": DEVICE}})
    if (folder / "adapter" / "adapter_model.safetensors").exists() and second.exists():
        return folder, second
    run = RunStore(root).create(cfg.replace("name", folder.name))
    if run.path != folder:
        run.path.rename(folder)
    lora_cfg = cfg.replace("method", {"name": "lora", "r": 16, "alpha": 32, "target_modules": "all-linear"})
    runtime = runtime_for(lora_cfg)
    model = runtime.wrap(load_model(lora_cfg, resolve_placement(lora_cfg))[0])
    for out, seed in ((folder / "adapter", 1), (second, 2)):
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.01)
        out.mkdir(parents=True, exist_ok=True)
        runtime.save(model, out)
    del model
    _free()
    return folder, second


def timed_replies(model, loaded, prompt: list[int], new_tokens: int, repeats: int) -> dict:
    from studio.core.chat import Sampling
    from studio.worker.generation import stream_reply

    never = threading.Event()
    sampling = Sampling(max_new_tokens=new_tokens)
    stream_reply(model, loaded.tokenizer, prompt, Sampling(max_new_tokens=8), lambda _t: None, never,
                 device=loaded.device)  # warm-up
    replies = [stream_reply(model, loaded.tokenizer, prompt, sampling, lambda _t: None, never, device=loaded.device)
               for _ in range(repeats)]
    return {"first_token_ms": round(1000 * statistics.median(r.first_token_s for r in replies), 1),
            "tokens_per_s": round(statistics.median(r.tokens_per_s for r in replies), 1),
            "new_tokens": int(statistics.median(r.tokens for r in replies))}


def bench_method(root: Path, model_dir: Path, method: str, args: argparse.Namespace) -> list[dict]:
    import random

    import torch

    from studio.core.data import Example
    from studio.worker.evaluate import validation_loss
    from studio.worker.generation import greedy_batch
    from studio.worker.inference import load_for_inference, resolve_target

    run_dir, second = make_run(root, model_dir, method)
    _reset_peak()
    start = time.perf_counter()
    loaded = load_for_inference(resolve_target(run_dir), log=lambda _line: None)
    load_s = time.perf_counter() - start
    rng = random.Random(0)
    prompt = [rng.randrange(SUBVOCAB) for _ in range(args.prompt_tokens)]
    rows = []
    common = {"method": method, "device": loaded.device, "precision": loaded.precision,
              "quantized": loaded.quantized or "-", "load_s": round(load_s, 1)}
    for mode, side in (("base", "base"), ("adapter", "tuned")):
        with loaded.side(side) as model:
            rows.append({**common, "mode": mode, **timed_replies(model, loaded, prompt, args.new_tokens, args.repeats),
                         "peak_gib": _peak()})

    load_ms, _ = loaded.load_adapter("second", second)
    switches = []
    for name in ("final", "second") * max(1, args.repeats):
        switches.append(loaded.set_adapter(name))
    switch = {"load_ms": round(load_ms, 1), "switch_ms": round(statistics.median(switches), 3)}
    loaded.set_adapter("final")

    examples = []
    for _ in range(args.eval_rows):
        ids = [rng.randrange(SUBVOCAB) for _ in range(args.eval_len)]
        labels = [-100] * (args.eval_len - args.eval_answer) + ids[-args.eval_answer:]
        examples.append(Example(ids, labels))
    _sync(loaded.device)
    t0 = time.perf_counter()
    read: list[int] = []
    _loss, scored = validation_loss(loaded, "tuned", examples, args.eval_batch, loaded.tokenizer.pad_token_id or 0,
                                    read=read)
    _sync(loaded.device)
    loss_s = time.perf_counter() - t0
    prompts = [[rng.randrange(SUBVOCAB) for _ in range(args.prompt_tokens)] for _ in range(args.gen_batch)]
    gen_tps = {}
    for side in ("base", "tuned"):
        with loaded.side(side) as model:
            greedy_batch(model, loaded.tokenizer, prompts[:2], 4, device=loaded.device)  # warm-up
            _sync(loaded.device)
            t0 = time.perf_counter()
            answers = greedy_batch(model, loaded.tokenizer, prompts, args.eval_new_tokens, device=loaded.device)
            _sync(loaded.device)
        gen_tps[side] = round(sum(n for _t, n in answers) / (time.perf_counter() - t0), 1)
    evaluation = {"loss_rows_per_s": round(len(examples) / loss_s, 1),
                  "loss_read_tokens_per_s": round(sum(read) / loss_s),
                  "generated_tokens_per_s": gen_tps["tuned"], "generated_base_tokens_per_s": gen_tps["base"]}

    if method in ("lora", "qlora", "dora", "qdora"):
        merged = loaded.runtime.merge(loaded.model).eval()
        merged.config.use_cache = True
        _free()
        rows.append({**common, "mode": "merged",
                     **timed_replies(merged, loaded, prompt, args.new_tokens, args.repeats), "peak_gib": _peak()})
        del merged
    for row in rows:
        row.update(switch if row["mode"] == "adapter" else {})
        row.update(evaluation if row["mode"] == "adapter" else {})
    del loaded
    _free()
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"Chat, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy, batch 1 "
             f"(median of {args.repeats}):", "",
             "| method | mode | base weights | first token | decode tokens/s | peak GiB | load s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        weights = r["precision"] + (f" {r['quantized']}" if r["quantized"] != "-" else "")
        lines.append(f"| {r['method']} | {r['mode']} | {weights} | {r['first_token_ms']:.1f} ms | "
                     f"{r['tokens_per_s']:,.1f} | {r['peak_gib']:.1f} | {r['load_s']} |")
    lines += ["", f"Adapters and evaluation (validation loss on {args.eval_rows}x{args.eval_len}-token rows, "
                  f"batch {args.eval_batch}; answers: {args.gen_batch} prompts x {args.eval_new_tokens} "
                  "new tokens):", "",
              "| method | load a 2nd adapter | switch adapters | eval loss: rows/s (tokens read/s) | "
              "eval answers: new tokens/s, adapter (base) |",
              "|---|---|---|---|---|"]
    for r in rows:
        if r["mode"] == "adapter":
            lines.append(f"| {r['method']} | {r['load_ms']:,.1f} ms | {r['switch_ms']:.3f} ms | "
                         f"{r['loss_rows_per_s']:,.1f} ({r['loss_read_tokens_per_s']:,.0f}) | "
                         f"{r['generated_tokens_per_s']:,.0f} ({r['generated_base_tokens_per_s']:,.0f}) |")
    return "\n".join(lines)


def _reset_peak() -> None:
    if DEVICE == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def _peak() -> float:
    if DEVICE != "cuda":
        return 0.0
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 1)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _free() -> None:
    import gc

    gc.collect()
    if DEVICE == "cuda":
        import torch

        torch.cuda.empty_cache()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="S3", choices=sorted(SHAPES), help="model shape (S3 = Llama-3.1-8B)")
    p.add_argument("--methods", default="lora,qlora", help="lora, qlora (4-bit base on CUDA), ...")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eval-rows", type=int, default=64)
    p.add_argument("--eval-len", type=int, default=512)
    p.add_argument("--eval-answer", type=int, default=64, help="loss tokens at the end of each eval row")
    p.add_argument("--eval-batch", type=int, default=8)
    p.add_argument("--gen-batch", type=int, default=32)
    p.add_argument("--eval-new-tokens", type=int, default=64)
    p.add_argument("--root", default="/tmp/chat-bench")
    p.add_argument("--out", default=os.environ.get("OUT", "bench-out"))
    args = p.parse_args()
    os.environ.setdefault("STUDIO_HOME", str(Path(args.root) / "home"))
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    model_dir = build(root, args.shape)
    rows = []
    for method in args.methods.split(","):
        rows += bench_method(root, model_dir, method.strip(), args)
        print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chat-bench.json").write_text(json.dumps({"shape": SHAPES[args.shape], "args": vars(args), "rows": rows},
                                                    indent=1))
    print(table(rows, args))


if __name__ == "__main__":
    main()
