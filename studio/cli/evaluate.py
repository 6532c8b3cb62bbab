"""`studio eval RUN [--checkpoint N|best|final|all] [--prompts FILE] [--json]`: score a run's checkpoints.

Runs the same evaluation worker as the GUI (`python -m studio --worker eval …`): validation loss
and perplexity of the base model and of every checkpoint, then answers to held-out prompts from
the base and the chosen checkpoint (default: the best by validation loss), scored by exact match,
ROUGE-L, BLEU and chrF. Prints the table and a few answers side by side (progress on stderr), or
with `--json` the whole result as JSON; the result is also kept in RUN_DIR/eval/latest.json.
Exit status: 0, 1 when the evaluation failed, 2 for a run that does not exist.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from studio.cli.train import Renderer


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="validation loss of every checkpoint and answers scored against the base",
                              description="Evaluate a run's checkpoints and its base model.")
    p.add_argument("run", help="a run folder, or a run id from `studio runs`")
    p.add_argument("--checkpoint", default="best",
                   help="whose answers to score: a step N, final, best (lowest validation loss, default) or all")
    p.add_argument("--prompts", help="held-out prompts: prompt/answer rows (JSONL, CSV, ...) or any training format "
                                     "(default: the run's validation split)")
    p.add_argument("--max-prompts", type=int, default=100, help="answer at most this many prompts (default 100)")
    p.add_argument("--max-new-tokens", type=int, help="longest answer (default: a little over the longest reference)")
    p.add_argument("--base-path", help="the run's base model is in this folder now (it moved)")
    p.add_argument("--samples", type=int, default=5, help="answers to print side by side (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress still on stderr)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the worker's log lines")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from studio.cli.export import resolve_run
    from studio.cli.train import follow
    from studio.core.evaluation import format_samples, format_table
    from studio.core.launcher import spawn_worker

    try:
        run_ = resolve_run(args.run)
    except FileNotFoundError as e:
        print(f"studio eval: {e}", file=sys.stderr)
        return 2
    extra = ["--checkpoint", str(args.checkpoint), "--max-prompts", str(args.max_prompts)]
    if args.prompts:
        extra += ["--prompts", str(Path(args.prompts).expanduser().resolve())]
    if args.max_new_tokens:
        extra += ["--max-new-tokens", str(args.max_new_tokens)]
    if args.base_path:
        extra += ["--base-path", str(Path(args.base_path).expanduser().resolve())]
    proc = spawn_worker(run_, "eval", *extra)
    render = _EvalRenderer(sys.stderr, args.verbose)
    follow(proc, render, sys.stderr)
    rc = proc.wait()
    result_path = render.result_path
    ok = rc == 0 and result_path is not None and render.done is not None and render.done.get("status") == "completed"
    if not ok:
        return 1
    result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
        return 0
    print(format_table(result))
    if result.get("samples") and args.samples > 0:
        print()
        print(format_samples(result, limit=args.samples))
    print(f"\n(saved to {result_path})")
    return 0


class _EvalRenderer(Renderer):
    """The training renderer's lines, plus one line per table row as it fills in."""

    result_path = None

    def _on_eval_result(self, e: dict) -> None:
        self.result_path = e["path"]

    def _on_eval_row(self, e: dict) -> None:
        if e.get("exact_match") is None:
            loss = f"val loss {e['val_loss']:.4f}, perplexity {e['perplexity']:.2f}" if e.get("val_loss") is not None \
                else "no validation loss"
            self._print(f"{e['label']}: {loss}")
