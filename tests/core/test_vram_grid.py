"""The estimator against the latest H100 grid (benchmarks/results/vram-grid30-v2: the engine with
bf16 adapter compute, Liger kernels and the recorded allocator).

Every measured row is re-scored with the estimator as it is now (benchmarks/vram_rescore.py: the
row's config and the engine's recorded decisions, default overheads), so a formula change that
makes the measured rows worse fails here, without a GPU. The older grids (vram-grid30, -30b, -30c:
fp32 adapter compute) stay in benchmarks/results as history; their rows describe an engine the
worker no longer runs by default.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "vram-grid30-v2" / "results.json"


def _scored() -> list[dict]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import vram_rescore
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return [vram_rescore.rescore_row(r) for r in vram_rescore.load_rows([str(RESULTS)])]


def test_v2_grid_rows_meet_the_allocated_target():
    scored = _scored()
    assert len(scored) == 30
    alloc = [abs(r["error_allocated"]) for r in scored]
    assert statistics.median(alloc) <= 0.03
    assert max(alloc) <= 0.08, max(scored, key=lambda r: abs(r["error_allocated"]))


def test_v2_grid_rows_reserved_within_ten_percent_but_the_default_allocators_standard_loss():
    scored = _scored()
    reserved = [abs(r["error_reserved"]) for r in scored]
    assert statistics.median(reserved) <= 0.05
    # The known misses: PyTorch's default allocator (the benchmark's child did not set the
    # worker's expandable segments) with the standard loss, whose fp32 logits segments are
    # re-carved between steps: 0.4 to 1.5 fp32 logits tensors of slack on the measured rows, not
    # modelled yet (docs/vram-estimator.md). Every other row holds the 10 % target.
    over = [r for r in scored if abs(r["error_reserved"]) > 0.10]
    assert all(r["allocator"] == "default" and "standard" in r["id"] for r in over), over
    assert len(over) <= 2 and max(reserved) <= 0.15
