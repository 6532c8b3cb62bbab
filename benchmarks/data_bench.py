"""Data pipeline benchmark: the studio against a plain `datasets` + tokenizer baseline, same file, same run.

    python benchmarks/data_bench.py [--rows 1000000] [--work DIR] [--chat]

Generates an alpaca JSONL of ``--rows`` rows (~1 KB each, so 1,000,000 rows is ~1 GB), trains a
BPE tokenizer (vocab 16k) on a sample, then measures, each arm in a fresh subprocess (so peak RSS
is its own and no import or cache is shared):

* preview    the studio's load_preview (head only) on the big file; the target is < 2 s
* baseline   datasets.load_dataset("json") + .map(tokenize, batched=True), where tokenize formats
             ChatML with an f-string and calls a transformers fast tokenizer (input_ids + mask)
* studio     tokenize_dataset(): detection, conversion, ChatML rendering, tokenization, exact loss
             labels, duplicate hashes, problem/location columns, Arrow cache
* cached     the studio again on the same file: loads the cache instead of re-tokenizing
* with --chat: the model's own chat template (jinja, prefix diffing for the mask) against a baseline
  that calls tokenizer.apply_chat_template per row

Prints rows/s, wall time and peak RSS per arm, and writes results.json into the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the model learns from examples that show what to say and when to stop while the data page shows every "
         "token that carries loss so nothing surprises you later on a long training run with many rows of text "
         "question answer explain summarise translate code python function returns list value error file line").split()
CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def generate(path: Path, rows: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            row = {"instruction": f"{i}: " + sentence(rng, rng.randint(20, 60)),
                   "input": sentence(rng, rng.randint(0, 40)),
                   "output": sentence(rng, rng.randint(40, 110))}
            f.write(json.dumps(row) + "\n")


def build_tokenizer(folder: Path, data: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    sample = []
    with data.open(encoding="utf-8") as f:
        for _, line in zip(range(20000), f):
            r = json.loads(line)
            sample.append(" ".join((r["instruction"], r["input"], r["output"])))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=16000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(sample, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}))


# ---- arms (each runs in its own process) ------------------------------------------------------
def arm_preview(data: Path, tok_dir: Path, cache: Path, chat: bool) -> dict:
    from studio.core.config import DataSpec
    from studio.core.data import load_preview

    t = time.perf_counter()
    p = load_preview(DataSpec(source="file", path=str(data)))
    return {"seconds": time.perf_counter() - t, "rows": len(p.rows), "format": p.detection.format}


def arm_baseline(data: Path, tok_dir: Path, cache: Path, chat: bool) -> dict:
    import datasets
    from transformers import PreTrainedTokenizerFast

    datasets.disable_progress_bars()
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"), eos_token="<|im_end|>")
    tok.chat_template = CHATML

    def fmt(ins: str, inp: str) -> str:
        return f"{ins}\n\n{inp}" if inp else ins

    def tokenize(batch):
        texts = [f"<|im_start|>user\n{fmt(i, x)}<|im_end|>\n<|im_start|>assistant\n{o}<|im_end|>\n"
                 for i, x, o in zip(batch["instruction"], batch["input"], batch["output"])]
        return tok(texts)

    def tokenize_chat(batch):
        ids = [tok.apply_chat_template([{"role": "user", "content": fmt(i, x)}, {"role": "assistant", "content": o}],
                                       tokenize=True)
               for i, x, o in zip(batch["instruction"], batch["input"], batch["output"])]
        return {"input_ids": [x["input_ids"] if hasattr(x, "keys") else x for x in ids]}

    t = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=str(data), split="train", cache_dir=str(cache))
    loaded = time.perf_counter() - t
    ds = ds.map(tokenize_chat if chat else tokenize, batched=True, remove_columns=ds.column_names)
    return {"seconds": time.perf_counter() - t, "load_seconds": loaded, "rows": len(ds)}


def arm_studio(data: Path, tok_dir: Path, cache: Path, chat: bool) -> dict:
    import datasets  # noqa: F401  imported before the clock starts, as in the baseline arm

    from studio.core.config import DataSpec
    from studio.core.data import load_tokenizer
    from studio.core.data.pipeline import tokenize_dataset

    tok = load_tokenizer(tok_dir)
    spec = DataSpec(source="file", path=str(data), template="auto" if chat else "chatml")
    t = time.perf_counter()
    out = tokenize_dataset(spec, tok)
    return {"seconds": time.perf_counter() - t, "rows": len(out.dataset), "from_cache": out.from_cache}


ARMS = {"preview": arm_preview, "baseline": arm_baseline, "studio": arm_studio, "cached": arm_studio}


def run_arm(name: str, data: Path, tok_dir: Path, cache: Path, chat: bool) -> dict:
    env = dict(os.environ, STUDIO_HOME=str(cache / "studio-home"), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="true")
    code = (f"import json, resource, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import data_bench as b; "
            f"from pathlib import Path; r = b.ARMS[{name!r}](Path({str(data)!r}), Path({str(tok_dir)!r}), "
            f"Path({str(cache)!r}), {chat!r}); r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
            "print('RESULT ' + json.dumps(r))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT))
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"arm {name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/studio-data-bench")
    ap.add_argument("--chat", action="store_true", help="also compare the chat-template path")
    ap.add_argument("--throughput-rows", type=int, default=0,
                    help="time tokenization on the first N rows only (the preview always opens the full file); "
                         "for slow machines where a full pass per arm takes too long")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"alpaca-{args.rows}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {data} ({data.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.0f} s", flush=True)
    tok_dir = work / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        build_tokenizer(tok_dir, data)
    timed = data
    if args.throughput_rows and args.throughput_rows < args.rows:
        timed = work / f"alpaca-{args.rows}-head{args.throughput_rows}.jsonl"
        if not timed.exists():
            with data.open("rb") as src, timed.open("wb") as dst:
                for _, line in zip(range(args.throughput_rows), src):
                    dst.write(line)
    results = {"rows": args.rows, "file_gb": round(data.stat().st_size / 1e9, 3), "cpus": os.cpu_count(),
               "timed_rows": args.throughput_rows or args.rows, "date": time.strftime("%Y-%m-%d"), "arms": {}}
    plan = [("preview", False), ("baseline", False), ("studio", False), ("cached", False)]
    if args.chat:
        plan += [("baseline", True), ("studio", True)]
    import shutil

    for name, chat in plan:
        label = name + (" (chat template)" if chat else "")
        cache = work / ("cache-chat" if chat else "cache")
        if name in ("baseline", "studio"):  # cold: no Arrow cache from an earlier arm or run
            shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        r = run_arm(name, data if name == "preview" else timed, tok_dir, cache, chat)
        r["rows_per_s"] = r["rows"] / r["seconds"] if name != "preview" else None
        results["arms"][label] = r
        rate = f"{r['rows_per_s']:>10,.0f} rows/s" if r["rows_per_s"] else " " * 17
        print(f"{label:<28} {r['seconds']:8.2f} s {rate}   peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
