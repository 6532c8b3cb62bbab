"""The estimator against the H100 measurements it was fixed on (benchmarks/results/vram-grid30*).

Every measured row is re-scored with the estimator as it is now (benchmarks/vram_rescore.py: the
row's config and the engine's recorded decisions, default overheads), so a formula change that
makes the measured rows worse fails here, without a GPU.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("vram-grid30*/results.json"))


def _scored() -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import vram_rescore
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return [vram_rescore.rescore_row(r) for r in vram_rescore.load_rows([str(p) for p in RESULTS])]


def test_measured_grid_rows_stay_within_the_accuracy_target():
    scored = _scored()
    assert len(scored) >= 30
    alloc = [abs(r["error_allocated"]) for r in scored]
    reserved = [abs(r["error_reserved"]) for r in scored]
    assert statistics.median(alloc) <= 0.03
    # the target: worst |error| 8 % on peak allocated (GaLore meets it through a measured GPU-only
    # term, GALORE_GPU_STEP_EXTRA; everything else through formulas checked on the CPU)
    assert max(alloc) <= 0.08, max(scored, key=lambda r: abs(r["error_allocated"]))
    # reserved: the allocator's history; 10 % is met by the median and all but a few rows
    assert statistics.median(reserved) <= 0.05
    assert sum(r > 0.10 for r in reserved) <= 4
    assert max(reserved) <= 0.15
