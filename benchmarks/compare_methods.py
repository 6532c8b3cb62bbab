"""Method comparison benchmark on a real architecture: LoRA, QLoRA, DoRA, IA3 and prompt tuning.

What it does (on a GPU machine; the lead runs it, tests do not):
  1. builds Qwen2.5-0.5B's public shape (24 layers, hidden 896, vocab 151,936) with random bf16
     weights and a WordLevel tokenizer ("w<id>" -> id), saved to a local folder like a download;
  2. writes a synthetic dataset a random model can learn: every row is a walk through a fixed
     random successor table over the 52 ASCII letters (one token each; next = table[letter]), so
     the loss falls from ln(151,936) ~ 11.9 towards 0 as a method learns the table (a soft prompt
     alone can reach about ln(52) ~ 4, the letters' unigram entropy);
  3. runs `studio.core.compare` exactly as `studio compare` does: one ordinary run per method,
     same model, data and step budget, each in its own `python -m studio --worker train` process;
  4. measures generation speed of the LoRA run unmerged vs merged (`--worker genspeed`, the
     D-LoRA trade-off) unless --no-genspeed;
  5. prints the comparison as markdown and writes compare_methods.json (rows, curves, GPU, versions)
     into --out (default $OUT, else ./benchmarks/results).

Budget: about 3-5 minutes on an H100 with the defaults (80 steps x 8 rows x 512 tokens per method);
a method that would push the total past --budget-s (default 450 s) is skipped and reported as such.

    python benchmarks/compare_methods.py [--out DIR] [--steps 80] [--methods lora,qlora,dora,ia3,prompt_tuning]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN25_05B = dict(model_type="qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                  num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True,
                  max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6)
METHODS = "lora,qlora,dora,ia3,prompt_tuning"
ROW_TOKENS = 512


TINY = dict(QWEN25_05B, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2)


def build_model(folder: Path, shape: dict = QWEN25_05B) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    if (folder / "done").exists():
        return folder
    shape = dict(shape)
    cfg = AutoConfig.for_model(shape.pop("model_type"), **shape, torch_dtype="bfloat16")
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    # transformers 5 picks the tokenizer class from config.json's model_type (Qwen2Tokenizer, a
    # byte-level BPE), whatever class was saved: so the tokenizer IS a byte-level BPE, with one token
    # per byte and no merges, and the data is letters, one token each.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({"<unk>": len(alphabet), "<pad>": len(alphabet) + 1, "</s>": len(alphabet) + 2})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                            eos_token="</s>").save_pretrained(folder)
    (folder / "done").write_text("ok")
    return folder


def write_dataset(path: Path, rows: int = 2000, seed: int = 1) -> Path:
    """Walks through a fixed random successor table over the 52 ASCII letters (one token each):
    learnable, and the same for every method."""
    rng = random.Random(seed)
    letters = list(string.ascii_letters)
    successor = dict(zip(letters, rng.sample(letters, len(letters))))
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(rows):
            c = rng.choice(letters)
            walk = []
            for _ in range(ROW_TOKENS - 1):  # the worker appends EOS
                walk.append(c)
                c = successor[c]
            f.write(json.dumps({"text": "".join(walk)}) + "\n")
    return path


def run_worker(args: list[str], log: Path, timeout_s: float) -> int:
    path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH", "")) if x)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path)
    with open(log, "a", encoding="utf-8") as out:
        try:
            return subprocess.run([sys.executable, "-m", "studio", "--worker", *args], stdout=out,
                                  stderr=subprocess.STDOUT, env=env, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            return -9


def environment() -> dict:
    info = {"python": sys.version.split()[0]}
    try:
        import peft
        import torch
        import transformers

        info.update(torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__,
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    except ImportError as e:
        info["error"] = str(e)
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--work", default=None, help="folder for the model, data and runs (default: a temp dir)")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting methods after this")
    parser.add_argument("--no-genspeed", action="store_true")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke-test the harness on a 2-layer model with the same vocabulary (CPU is fine)")
    args = parser.parse_args()
    started = time.time()
    work = Path(args.work or tempfile.mkdtemp(prefix="compare-methods-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["STUDIO_HOME"] = str(work / "home")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from studio.core.compare import comparison_configs, create_comparison, format_table, summarise_run
    from studio.core.config import RunConfig
    from studio.core.runs import RunStore

    print(f"building Qwen2.5-0.5B-shaped model in {work}", flush=True)
    model_dir = build_model(work / ("tiny-random" if args.tiny else "qwen2.5-0.5b-random"),
                            TINY if args.tiny else QWEN25_05B)
    data = write_dataset(work / "walks.jsonl")
    base = RunConfig.from_dict({
        "name": "bench", "model": {"source": "local", "path": str(model_dir)},
        "data": {"source": "file", "path": str(data), "format": "text", "train_on": "all",
                 "validation_split": 0.02, "dedup": False},
        "method": {"name": "lora", "r": 16, "alpha": 32, "target_modules": "all-linear"},
        "training": {"learning_rate": 5e-4, "max_steps": args.steps, "batch_size": args.batch,
                     "max_seq_len": ROW_TOKENS, "warmup_ratio": 0.05, "logging_steps": 5,
                     "eval_steps": 0, "seed": 7},
    })
    configs = comparison_configs(base, args.methods, steps=args.steps)
    store = RunStore(work / "runs")
    runs = create_comparison(store, configs)
    skipped: list[str] = []
    per_method: list[float] = []
    for cfg, run in zip(configs, runs):
        elapsed = time.time() - started
        expected = max(per_method) if per_method else 60.0
        if elapsed + expected > args.budget_s:
            skipped.append(cfg.method.name)
            print(f"skip {cfg.method.name}: {elapsed:.0f} s used, ~{expected:.0f} s more would pass the budget")
            continue
        t0 = time.time()
        rc = run_worker(["train", str(run.path)], run.path / "bench.log", timeout_s=args.budget_s)
        per_method.append(time.time() - t0)
        print(f"{cfg.method.name}: exit {rc}, {per_method[-1]:.0f} s ({run.state})", flush=True)
    genspeed = None
    lora_run = next((r for r, c in zip(runs, configs) if c.method.name == "lora" and r.state == "completed"), None)
    if lora_run is not None and not args.no_genspeed and time.time() - started < args.budget_s:
        rc = run_worker(["genspeed", str(lora_run.path), "--new-tokens", "128"], lora_run.path / "bench.log", 120)
        if rc == 0:
            genspeed = json.loads((lora_run.path / "genspeed.json").read_text())

    rows = [summarise_run(r) for r in runs if r.events()]
    table = format_table(rows)
    print("\n## Methods on Qwen2.5-0.5B (random weights), "
          f"{args.steps} steps x {args.batch} x {ROW_TOKENS} tokens\n\n{table}")
    if genspeed:
        print(f"\nLoRA generation, batch 1, 128 new tokens: unmerged {genspeed['adapter']['tokens_per_s']:,.0f} "
              f"tokens/s, merged {genspeed['merged']['tokens_per_s']:,.0f} tokens/s ({genspeed['speedup']:.2f}x)")
    if skipped:
        print(f"\nskipped for time: {', '.join(skipped)}")
    for r in rows:
        if r.state != "completed":
            print(f"\n{r.method} {r.state}: {r.message}\n{run_log_tail(store, r.run_id)}")
    result = {"environment": environment(), "steps": args.steps, "batch": args.batch, "row_tokens": ROW_TOKENS,
              "rows": [r.to_dict() for r in rows], "skipped": skipped, "genspeed": genspeed,
              "total_s": round(time.time() - started, 1), "markdown": table}
    (out / "compare_methods.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\nwrote {out / 'compare_methods.json'} ({result['total_s']} s)")
    return 0 if rows and all(r.state == "completed" for r in rows) else 1


def run_log_tail(store, run_id: str) -> str:
    try:
        return store.get(run_id).log_tail(15)
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
