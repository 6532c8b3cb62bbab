"""`studio runs [--json]`: list the runs in the studio's runs folder (id, state, method, final loss)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("runs", help="list runs", description="List runs, newest first.")
    p.add_argument("--dir", help="a runs folder other than the studio's")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def summarize(run_: Any) -> dict[str, Any]:
    """One run as a row: id, state (reconciled), method, steps, final loss, path."""
    state = run_.reconcile()
    status = run_.status()
    try:
        method = run_.config().method.name
    except Exception:  # a damaged config still gets listed
        method = "?"
    loss = status.get("final_loss")
    if loss is None:
        steps = [e for e in run_.events() if e.get("type") == "step"]
        loss = steps[-1]["loss"] if steps else None
    return {"id": run_.id, "state": state, "method": method, "steps": status.get("steps"),
            "final_loss": loss, "path": str(run_.path)}


def run(args: Any) -> int:
    from studio.core.runs import RunStore

    store = RunStore(Path(args.dir).expanduser() if args.dir else None)
    rows = [summarize(r) for r in store.list()]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    if not rows:
        print(f"no runs in {store.root}")
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'ID':<{width}}  {'STATE':<10} {'METHOD':<10} {'STEPS':>6}  FINAL LOSS")
    for r in rows:
        loss = f"{r['final_loss']:.4f}" if isinstance(r["final_loss"], (int, float)) else "-"
        steps = str(r["steps"]) if r["steps"] is not None else "-"
        print(f"{r['id']:<{width}}  {r['state']:<10} {r['method']:<10} {steps:>6}  {loss}")
    return 0
