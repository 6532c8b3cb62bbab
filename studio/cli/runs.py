"""`studio runs [--dir DIR] [--json]`: list runs (id, name, state, method, final loss), newest first.

Without --dir it lists every folder runs were written to: the studio's runs folder and each output
folder a run used (studio.core.run_roots, the same list the GUI's Runs page shows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("runs", help="list runs", description="List runs, newest first.")
    p.add_argument("--dir", help="only the runs in this folder (default: the studio's runs folder and every "
                                 "output folder a run was written to)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def summarize(run_: Any) -> dict[str, Any]:
    """One run as a row: id, name, state (reconciled), method, steps, final loss, path."""
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
    return {"id": run_.id, "name": status.get("name") or "", "state": str(state), "method": method,
            "steps": status.get("steps"), "final_loss": loss, "path": str(run_.path)}


def run(args: Any) -> int:
    from studio.core.run_roots import all_runs, known_roots

    roots = [Path(args.dir).expanduser().resolve()] if args.dir else known_roots()
    rows = [summarize(r) for r in all_runs(roots=[r for r in roots if r.is_dir()])]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    if not rows:
        print(f"no runs in {', '.join(map(str, roots))}")
        return 0
    print(format_table(rows), end="")
    return 0


COLUMNS = (("ID", "id", "<"), ("NAME", "name", "<"), ("STATE", "state", "<"), ("METHOD", "method", "<"),
           ("STEPS", "steps", ">"), ("FINAL LOSS", "final_loss", ">"))


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows under their headers, each column as wide as its widest cell."""
    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if value is None:
            return "-"
        if key == "final_loss" and isinstance(value, (int, float)):
            return f"{value:.4f}"
        return str(value)

    table = [[title for title, _, _ in COLUMNS]] + [[cell(r, key) for _, key, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    out = []
    for line in table:
        cells = [f"{text:{align}{width}}" for text, width, (_, _, align) in zip(line, widths, COLUMNS)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"
