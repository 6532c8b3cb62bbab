"""A catalog of common GPUs and their memory, for planning without (or beyond) the local GPU.

Memory is what the card reports as total (``nvidia-smi``), in bytes. ``bf16`` says whether the
card computes in bfloat16 (Ampere and newer); the estimator's ``precision: auto`` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

GIB = 1024 ** 3


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_bytes: int
    bf16: bool = True

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


def _g(name: str, gib: float, bf16: bool = True) -> GpuSpec:
    return GpuSpec(name, int(gib * GIB), bf16)


# Usable totals as the driver reports them (slightly below the marketing number on some cards).
GPU_CATALOG: tuple[GpuSpec, ...] = (
    _g("RTX 2080 Ti 11GB", 11.0, bf16=False),
    _g("RTX 3060 12GB", 12.0),
    _g("RTX 3080 10GB", 10.0),
    _g("RTX 3080 12GB", 12.0),
    _g("RTX 3090 24GB", 24.0),
    _g("RTX 4060 Ti 16GB", 16.0),
    _g("RTX 4070 12GB", 12.0),
    _g("RTX 4070 Ti Super 16GB", 16.0),
    _g("RTX 4080 16GB", 16.0),
    _g("RTX 4090 24GB", 24.0),
    _g("RTX 5070 Ti 16GB", 16.0),
    _g("RTX 5080 16GB", 16.0),
    _g("RTX 5090 32GB", 32.0),
    _g("RTX A4000 16GB", 16.0),
    _g("RTX A5000 24GB", 24.0),
    _g("RTX A6000 48GB", 48.0),
    _g("RTX 6000 Ada 48GB", 48.0),
    _g("RTX PRO 6000 Blackwell 96GB", 95.6),
    _g("T4 16GB", 15.0, bf16=False),
    _g("V100 16GB", 16.0, bf16=False),
    _g("V100 32GB", 32.0, bf16=False),
    _g("A10 24GB", 22.5),
    _g("A10G 24GB", 22.5),
    _g("L4 24GB", 22.5),
    _g("L40S 48GB", 44.5),
    _g("A100 40GB", 39.5),
    _g("A100 80GB", 79.2),
    _g("H100 80GB", 79.2),
    _g("H100 NVL 94GB", 93.1),
    _g("H200 141GB", 139.8),
    _g("B200 180GB", 178.4),
    _g("MI300X 192GB", 191.5),
)


def find_gpu(name: str) -> Optional[GpuSpec]:
    """A catalog entry by exact or partial, case-insensitive name ("4090", "a100 80")."""
    wanted = " ".join(name.lower().replace("-", " ").split())
    if not wanted:
        return None
    for g in GPU_CATALOG:
        if g.name.lower() == wanted:
            return g
    hits = [g for g in GPU_CATALOG if all(tok in g.name.lower() for tok in wanted.split())]
    return hits[0] if hits else None


def gpu_names() -> list[str]:
    return [g.name for g in GPU_CATALOG]


def spec_for_detected(name: str, total_bytes: int) -> GpuSpec:
    """A spec for a GPU seen through NVML, borrowing bf16 support from the catalog when known."""
    known = next((g for g in GPU_CATALOG if _core_name(g.name) in name.lower()), None)
    return GpuSpec(name, total_bytes, known.bf16 if known else True)


def _core_name(catalog_name: str) -> str:
    # "RTX 4090 24GB" -> "4090"; "A100 80GB" -> "a100"
    parts = [p for p in catalog_name.lower().split() if not p.endswith("gb") and p != "rtx"]
    return " ".join(parts)


@dataclass(frozen=True)
class Target:
    """The GPU a run is planned for: its total memory and the budget a run may use on it."""

    label: str
    total_bytes: int
    budget_bytes: int
    bf16: bool = True
    detected: bool = False


def target_for_spec(spec: GpuSpec) -> Target:
    from studio.core.vram.estimator import budget_for

    return Target(spec.name, spec.memory_bytes, budget_for(spec.memory_bytes), spec.bf16)


def target_for_memory(gib: float) -> Target:
    from studio.core.vram.estimator import budget_for

    total = int(gib * GIB)
    return Target(f"{gib:g} GiB GPU", total, budget_for(total))


def detected_target(index: int = 0) -> Optional[Target]:
    """This machine's GPU as NVML sees it now (memory used by other programs is subtracted)."""
    from studio.core.gpu import gpu_snapshot
    from studio.core.vram.estimator import budget_for

    states = gpu_snapshot()
    if not states or index >= len(states):
        return None
    g = states[index]
    spec = spec_for_detected(g.name, g.mem_total)
    return Target(f"{g.name} (this machine)", g.mem_total, budget_for(g.mem_total, g.mem_used), spec.bf16, True)


def resolve_target(gpu: Optional[str] = None, memory_gib: Optional[float] = None) -> Optional[Target]:
    """--gpu NAME / --memory GB / the detected GPU / None. Raises ValueError for an unknown name."""
    if memory_gib is not None:
        if memory_gib <= 0:
            raise ValueError("memory must be a positive number of GB")
        return target_for_memory(memory_gib)
    if gpu:
        spec = find_gpu(gpu)
        if spec is None:
            raise ValueError(f"unknown GPU {gpu!r}; known: {', '.join(gpu_names())} (or give --memory GB)")
        return target_for_spec(spec)
    return detected_target()
