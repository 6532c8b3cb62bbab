"""The estimator against the latest H100 grid (benchmarks/results/vram-grid30-v3: the engine of
2026-11-24, expandable allocator segments, 30 eager rows plus 12 with compiled decoder layers) and
the holdout rows measured after the estimator was fitted on v3 (benchmarks/results/vram-holdout-v3).

Every measured row is re-scored with the estimator as it is now (benchmarks/vram_rescore.py: the
row's config and the engine's recorded decisions, default overheads), so a formula change that
makes the measured rows worse fails here, without a GPU. Older grids (vram-grid30*, -v2) stay in
benchmarks/results as history: they measured engines the worker no longer runs.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _scored(name: str) -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import vram_rescore
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return [vram_rescore.rescore_row(r) for r in vram_rescore.load_rows([str(RESULTS / name / "results.json")])]


def test_v3_grid_meets_the_allocated_and_reserved_targets():
    scored = _scored("vram-grid30-v3")
    assert len(scored) == 42 and sum("compiled" in r["id"] for r in scored) == 12
    alloc = [abs(r["error_allocated"]) for r in scored]
    assert statistics.median(alloc) <= 0.03
    assert max(alloc) <= 0.08, max(scored, key=lambda r: abs(r["error_allocated"]))
    worst = max(scored, key=lambda r: abs(r["error_reserved"]))
    assert abs(worst["error_reserved"]) <= 0.10, worst


def test_holdout_rows_stay_within_the_targets():
    scored = _scored("vram-holdout-v3")
    assert len(scored) == 6
    assert max(abs(r["error_allocated"]) for r in scored) <= 0.05
    assert max(abs(r["error_reserved"]) for r in scored) <= 0.10
