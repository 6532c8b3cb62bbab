"""`studio export RUN_DIR --kind adapter|merged [--out DIR]`: export a trained run headless.

Runs the same export worker as the GUI (`python -m studio --worker export ...`) and prints its
progress. RUN_DIR may be a run folder or a run id from `studio runs`. Exit status 0 on success.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a trained run as an adapter or a merged model",
                              description="Export a run's trained adapter, or merge it into its base model.")
    p.add_argument("run", help="a run folder, or a run id from `studio runs`")
    p.add_argument("--kind", choices=("adapter", "merged"), default="adapter")
    p.add_argument("--out", help="a new folder to write (default: RUN_DIR/exports/<kind>)")
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
    out = Path(args.out).expanduser().resolve() if args.out else run_.exports_dir / args.kind
    source = Path(args.source).expanduser().resolve() if args.source else None
    return export(run_, args.kind, out, dtype=args.dtype, source=source, verbose=args.verbose)


def export(run_: Any, kind: str, out: Path, dtype: str = "auto", source: Optional[Path] = None,
           verbose: bool = False) -> int:
    """Run the export worker for ``run_`` into ``out``, printing its progress; 0 when it completed."""
    from studio.cli.train import Renderer, worker_lines
    from studio.core.launcher import spawn_worker
    from studio.core.protocol import ProtocolError, decode

    extra = ["--kind", kind, "--out", str(out), "--dtype", dtype]
    if source:
        extra += ["--from", str(source)]
    proc = spawn_worker(run_, "export", *extra)
    render = Renderer(sys.stdout, verbose)
    for line in worker_lines(proc):
        try:
            event = decode(line)
        except ProtocolError as e:
            print(f"protocol: {e}")
            continue
        render.log(line.rstrip("\n")) if event is None else render.event(event)
    rc = proc.wait()
    ok = rc == 0 and render.done is not None and render.done.get("status") == "completed"
    return 0 if ok else 1
