"""`studio data inspect PATH`: what a dataset looks like to training, without the GUI.

Prints the detected format with its evidence, row and token statistics and every problem with
its location. Exit status 0 when the data can be trained on, 1 when it can't, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional


TEMPLATE_WORDS = {"tokenizer": "the model’s chat template", "custom": "the custom chat template"}


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="inspect datasets", description="Inspect datasets.")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    p = sub.add_parser("inspect", help="format, statistics and problems of a dataset",
                       description="Detect a dataset's format, count rows and tokens, and list every problem.")
    p.add_argument("path", help="a .jsonl/.json/.csv/.tsv/.parquet/.txt file, a folder, or a hub dataset id")
    p.add_argument("--format", default="auto",
                   choices=["auto", "alpaca", "sharegpt", "messages", "prompt_completion", "text"])
    p.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                   help="map your column to a studio field, e.g. --map question=instruction (repeatable)")
    p.add_argument("--model", help="model folder whose tokenizer counts tokens (default: the demo model's)")
    p.add_argument("--max-len", type=int, default=1024, help="max sequence length in tokens (default 1024)")
    p.add_argument("--template", default="auto",
                   help="chat template: auto (the model's own, else ChatML), chatml, alpaca, llama3, or a Jinja "
                        "chat template (or @FILE holding one)")
    p.add_argument("--train-on", default="completion", choices=["completion", "all"])
    p.add_argument("--no-eos", action="store_true", help="don't end examples with the EOS token")
    p.add_argument("--val-share", type=float, default=0.0, help="share of rows held out for validation")
    p.add_argument("--val-file", default="", help="a separate validation file")
    p.add_argument("--seed", type=int, default=42, help="shuffle seed")
    p.add_argument("--no-dedup", action="store_true", help="keep exact duplicates")
    p.add_argument("--packing", action="store_true", help="pack short examples into full sequences")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--hub", action="store_true", help="treat PATH as a hub dataset id")
    p.add_argument("--subset", default=None, help="hub dataset subset (configuration)")
    p.add_argument("--split", default="train", help="split (hub ids and save_to_disk folders)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_inspect)
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])


def parse_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        col, sep, fld = item.partition("=")
        if not sep or not col.strip() or not fld.strip():
            raise ValueError(f"--map {item!r}: write it as COLUMN=FIELD, e.g. question=instruction")
        out[col.strip()] = fld.strip()
    return out


def run_inspect(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from studio.core.config import DataSpec, describe_validation_error
    from studio.core.data import DataError
    from studio.core.data.progress import Progress
    from studio.core.data.stats import compute_stats

    try:
        template = _template_arg(args.template)
        column_map = parse_map(args.map)
        hub = args.hub or (not Path(args.path).expanduser().exists() and _looks_like_hub_id(args.path))
        spec = DataSpec(source="hub" if hub else "file", path=args.path, format=args.format, column_map=column_map,
                        template=template, train_on=args.train_on, add_eos=not args.no_eos,
                        validation_split=args.val_share, validation_path=args.val_file, shuffle_seed=args.seed,
                        dedup=not args.no_dedup, packing=args.packing, subset=args.subset, split=args.split)
    except ValidationError as e:
        return _fail(args, describe_validation_error(e), 2)
    except ValueError as e:
        return _fail(args, str(e), 2)
    try:
        tokenizer, tok_note = _tokenizer(args.model)
        show = sys.stderr.isatty() and not args.json
        progress = Progress(lambda f, m: print(f"\r{f:4.0%} {m[:70]:<70}", end="", file=sys.stderr) if show else None)
        stats = compute_stats(spec, tokenizer, max_len=args.max_len, batch_size=args.batch_size,
                              grad_accum=args.grad_accum, progress=progress)
        if show:
            print("\r" + " " * 80 + "\r", end="", file=sys.stderr)
    except DataError as e:
        return _fail(args, str(e), 1)
    except KeyboardInterrupt:
        return _fail(args, "cancelled", 130)
    ok = stats.trainable
    if args.json:
        out = stats.to_dict()
        out.update({"ok": ok, "tokenizer": tok_note})
        print(json.dumps(out, indent=2))
    else:
        print(format_report(stats, tok_note, args.batch_size, args.grad_accum))
        if not ok:
            print("\nThis data can't be trained on: no usable rows remain. Fix the problems above.")
    return 0 if ok else 1


def _template_arg(value: str) -> str:
    """A name or a Jinja text as given; ``@FILE``: the Jinja text in FILE (DataSpec makes Jinja 'custom')."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"--template {value}: cannot read the template file ({e.strerror or e})") from None


def _looks_like_hub_id(path: str) -> bool:
    parts = path.strip().split("/")
    return len(parts) == 2 and all(parts) and not path.startswith((".", "~")) and "." not in parts[0][:1] \
        and not Path(parts[0]).exists()


def _tokenizer(model: Optional[str]):
    from studio.core.data import DataError, load_tokenizer
    from studio.core.paths import demo_model_dir

    if not model:
        return load_tokenizer(demo_model_dir()), "the demo model's tokenizer (pass --model for yours)"
    try:
        return load_tokenizer(model), str(model)
    except DataError:
        if not Path(model).expanduser().is_dir():
            raise DataError(f"{model}: model folder not found. Pass the folder that holds the model's tokenizer.")
    try:  # a slow (sentencepiece-only) tokenizer: transformers can read it; the CLI may import it
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model), str(model)
    except Exception as e:
        raise DataError(f"{model}: cannot load a tokenizer from this folder ({e}).") from e


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def format_report(stats: Any, tok_note: str, batch_size: int, grad_accum: int) -> str:
    s = stats
    lines = [f"Source     {s.source}",
             f"Format     {s.detection.format}: {s.detection.evidence}",
             f"Template   {TEMPLATE_WORDS.get(s.template, s.template)}; tokens counted with {tok_note}",
             f"Rows       {s.rows:,} read, {s.usable:,} usable, {s.skipped:,} unusable, "
             f"{s.duplicates:,} exact duplicates removed",
             f"Split      {s.train_rows:,} train, {s.val_rows:,} validation"]
    d = s.to_dict()["tokens_per_row"]
    if d:
        lines.append(f"Tokens     per row: min {d['min']:,}, median {d['median']:,.0f}, mean {d['mean']:,.0f}, "
                     f"p95 {d['p95']:,.0f}, max {d['max']:,} (max length {s.max_len:,})")
        lines.append(f"           {s.truncated:,} rows truncated ({s.tokens_lost:,} tokens lost), "
                     f"{s.dropped:,} dropped (nothing left to learn after truncation)")
        lines.append(f"           {s.train_tokens:,} training tokens per epoch, {s.loss_tokens:,} carry loss")
    if s.packing and s.packing_efficiency is not None:
        lines.append(f"Packing    {s.train_rows:,} rows into {s.sequences:,} sequences, {s.packing_efficiency:.0%} full")
    lines.append(f"Steps      {s.steps_per_epoch:,} per epoch (micro-batch {batch_size} x accumulation {grad_accum})")
    if s.problem_count:
        lines.append(f"Problems   {s.problem_count:,}" + (f" (first {len(s.problems)} listed)"
                                                          if s.problem_count > len(s.problems) else ""))
        lines.extend(f"  {p}" for p in s.problems)
    else:
        lines.append("Problems   none")
    return "\n".join(lines)
