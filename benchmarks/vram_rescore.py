"""Re-score measured VRAM grid rows with the estimator as it is now (CPU, no GPU needed).

Every row of a ``benchmarks/vram_accuracy.py`` results.json names its configuration (model key,
method, micro-batch, length, checkpointing, loss, padding, extra method fields) and the engine's
recorded decisions (``engine_choices``: checkpointing, loss, fused kernels). This rebuilds the
run's config exactly as the benchmark did, applies those decisions, estimates on the reference
machine (default overheads; the allocator and kernels the row recorded), and compares with the
measured peaks: the estimator's accuracy after a formula change, without another GPU session.

Usage:
    python benchmarks/vram_rescore.py benchmarks/results/vram-grid30/results.json \
        benchmarks/results/vram-grid30b/results.json benchmarks/results/vram-grid30c/results.json
A configuration measured in several files is scored once, from the last file that has it as ok.
Each row is estimated with the allocator it ran (``engine_choices.allocator``); the summary says
how many rows ran which, since the two leave very different reserved memory.
``--json`` prints the rows as JSON instead of the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

GIB = 1024 ** 3


def rescore_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row's estimate with the current estimator (default overheads), next to its measurement."""
    import vram_accuracy as va

    from studio.core.config import RunConfig
    from studio.core.engine_choice import choices_from_json
    from studio.core.vram import Machine, estimate
    from studio.core.vram.calibration import config_as_ran, recipe_as_ran

    key = next(k for k, v in va.MODELS.items() if row["id"].startswith(k + "-") and v == row["model"])
    spec = (key, row["method"], row["batch"], row["seq"], row["checkpointing"], row["loss"], row["padded"],
            row.get("extra") or {})
    cfg = va.run_config(spec, Path("."), Path("."), Path("."))
    cfg["model"] = {"source": "hub", "path": row["model"]}
    choices = choices_from_json(row.get("engine_choices") or {})
    config = config_as_ran(RunConfig.from_dict(cfg), choices)
    if not choices:  # rows measured before the engine recorded choices ran PEFT's fp32 adapter inputs
        config = config.replace("training.adapter_compute", "fp32")
    recipe = recipe_as_ran(choices)
    expandable = bool(recipe.expandable_segments)
    est = estimate(config, va.model_facts(key), machine=Machine(), recipe=recipe)
    ma, mr = row["measured_allocated"], row["measured_reserved"]
    return {"id": row["id"], "est_allocated": est.peak_allocated, "measured_allocated": ma,
            "error_allocated": (est.peak_allocated - ma) / ma, "est_reserved": est.peak_reserved,
            "measured_reserved": mr, "error_reserved": (est.peak_reserved - mr) / mr, "est_phase": est.peak_phase,
            "old_error_allocated": row.get("error_allocated"), "old_error_reserved": row.get("error_reserved"),
            "allocator": "expandable" if expandable else "default"}


def load_rows(paths: list[str]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for p in paths:
        for r in json.loads(Path(p).read_text()):
            if r.get("status") == "ok" and r.get("measured_allocated"):
                rows[r["id"]] = r
    return list(rows.values())


def summary(scored: list[dict[str, Any]], key: str) -> str:
    errs = [abs(r[key]) for r in scored]
    return (f"median |error| {100 * statistics.median(errs):.1f}%, worst {100 * max(errs):.1f}% "
            f"({max(scored, key=lambda r: abs(r[key]))['id']})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="results.json files from benchmarks/vram_accuracy.py")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    scored = [rescore_row(r) for r in load_rows(args.results)]
    if not scored:
        print("no measured rows in these files", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(scored, indent=1))
        return 0

    def pct(v: Any) -> str:
        return f"{100 * v:+.1f}%" if v is not None else "—"

    print("| config | est. alloc GiB | measured GiB | error | was | est. reserved GiB | measured GiB | error | was "
          "| peak phase |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in scored:
        print(f"| {r['id']} | {r['est_allocated'] / GIB:.2f} | {r['measured_allocated'] / GIB:.2f} "
              f"| {pct(r['error_allocated'])} | {pct(r['old_error_allocated'])} | {r['est_reserved'] / GIB:.2f} "
              f"| {r['measured_reserved'] / GIB:.2f} | {pct(r['error_reserved'])} | {pct(r['old_error_reserved'])} "
              f"| {r['est_phase']} |")
    over = [r["id"] for r in scored if abs(r["error_reserved"]) > 0.10]
    kinds = {k: sum(r["allocator"] == k for r in scored) for k in ("expandable", "default")}
    print(f"\n{len(scored)} rows. allocated: {summary(scored, 'error_allocated')}; "
          f"reserved: {summary(scored, 'error_reserved')}; over 10% reserved: {len(over)}"
          f"{' (' + ', '.join(over) + ')' if over else ''}; allocator: {kinds['expandable']} expandable segments, "
          f"{kinds['default']} PyTorch default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
