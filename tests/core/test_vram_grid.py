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
    # The target is 8 %; GaLore on Phi-3 (p3s) still misses it by ~1.5 points: its step on the GPU
    # holds ~1 byte per decoder-matrix parameter more than the CPU trace of the same code shows
    # (docs/vram-estimator.md, known limits). The bound catches any regression beyond that.
    assert max(alloc) <= 0.10, max(scored, key=lambda r: abs(r["error_allocated"]))
    worst_non_galore = max(a for a, r in zip(alloc, scored) if "galore" not in r["id"])
    assert worst_non_galore <= 0.085
    assert statistics.median(reserved) <= 0.05
    assert max(reserved) <= 0.15
