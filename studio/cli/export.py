"""`studio export RUN_DIR --kind adapter|merged|gguf [--quant Q] [--out DIR] [--no-verify]`: export headless.

Runs the same export worker as the GUI (`python -m studio --worker export ...`) and prints its
progress. RUN_DIR may be a run folder or a run id from `studio runs`. For GGUF the CLI first asks
studio.core.gguf_support whether the run can be exported at all (and prints why not, without
starting a worker) and prints the size/time estimate. The verification verdict is printed in a
box, FAILED in capitals. Exit status 0 on success, 1 when the export or its verification failed,
2 when it could not start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional


def register(subparsers: Any) -> None:
    from studio.core.gguf_plan import QUANT_NAMES

    p = subparsers.add_parser("export", help="export a trained run as an adapter, a merged model or a GGUF file",
                              description="Export a run's trained adapter, merge it into its base model, or write "
                                          "the merged model as a GGUF file for llama.cpp and Ollama (with a "
                                          "Modelfile). Each export is then reloaded the way its users will load it "
                                          "and compared with its source (--no-verify skips this; it costs about "
                                          "one more load of the model and a few hundred tokens of inference).")
    p.add_argument("run", help="a run folder, or a run id from `studio runs`")
    p.add_argument("--kind", choices=("adapter", "merged", "gguf"), default="adapter")
    p.add_argument("--quant", type=str.lower, choices=QUANT_NAMES, default="f16",
                   help="GGUF type (f32/f16/bf16/q8_0 are written directly; K-quants by llama.cpp's quantizer)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not reload the export and compare it with the model it came from")
    p.add_argument("--out", help="a new folder to write (default: RUN_DIR/exports/<kind>, gguf-<quant> for GGUF)")
    p.add_argument("--from", dest="source", help="export these trained weights instead (e.g. a checkpoint folder)")
    p.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
                   help="precision of a merged model (auto: bf16, fp32 when the base is fp32)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the worker's log lines")
    p.set_defaults(func=run)


def resolve_run(ref: str):
    """A run folder, or a run id from `studio runs` (in any folder runs were written to)."""
    from studio.core.run_roots import find_run

    return find_run(ref)


def run(args: Any) -> int:
    try:
        run_ = resolve_run(args.run)
    except FileNotFoundError as e:
        print(f"studio export: {e}", file=sys.stderr)
        return 2
    default = args.kind if args.kind != "gguf" else f"gguf-{args.quant}"
    out = Path(args.out).expanduser().resolve() if args.out else run_.exports_dir / default
    source = Path(args.source).expanduser().resolve() if args.source else None
    if args.kind == "gguf":
        refused = gguf_refusal(run_, source)
        if refused:
            print(f"studio export: {refused}", file=sys.stderr)
            return 2
    return export(run_, args.kind, out, dtype=args.dtype, source=source, verbose=args.verbose, quant=args.quant,
                  verify=args.verify)


def gguf_refusal(run_: Any, source: Optional[Path]) -> str:
    """Why this run cannot become a GGUF file ('' when it can), read from files before a worker starts."""
    from studio.core.config import ConfigError
    from studio.core.gguf_support import gguf_offer

    try:
        cfg = run_.config()
    except (ConfigError, OSError) as e:
        return str(e)
    offer = gguf_offer(cfg, source or run_.adapter_dir)
    return "" if offer.ok else f"GGUF is not offered for this run: {offer.reason}"


def export(run_: Any, kind: str, out: Path, dtype: str = "auto", source: Optional[Path] = None,
           verbose: bool = False, quant: str = "f16", verify: bool = True) -> int:
    """Run the export worker for ``run_`` into ``out``, printing its progress; 0 when it completed."""
    from studio.cli.train import Renderer, follow
    from studio.core.launcher import spawn_worker
    from studio.core.runs import RunState

    extra = ["--kind", kind, "--out", str(out), "--dtype", dtype, "--quant", quant]
    if not verify:
        extra.append("--no-verify")
    if source:
        extra += ["--from", str(source)]
    proc = spawn_worker(run_, "export", *extra)
    render = Renderer(sys.stdout, verbose)
    follow(proc, render, sys.stdout)
    rc = proc.wait()
    ok = rc == 0 and render.done is not None and render.done.get("status") == RunState.COMPLETED
    return 0 if ok else 1
