"""The machine a run trains on, as far as the estimate depends on it: stated, never looked up.

An estimate depends on three facts about the training machine: overheads calibrated from its
finished runs (``Overheads``), whether the worker's CUDA allocator grows segments in place
(``PYTORCH_CUDA_ALLOC_CONF``), and whether Liger's fused kernels are installed there. The pure
estimator (``studio.core.vram.estimate`` and below) takes them as a ``Machine`` argument, so the
same config gives the same estimate everywhere and a test states all of it. ``machine_here()``
reads them from this machine: the GUI, the CLI and the worker call it, once per estimate.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache

from studio.core.engine_rules import expandable_segments

MIB = 1024 ** 2


@dataclass(frozen=True)
class Overheads:
    """The machine-dependent constants; calibration refines them from measured runs."""

    cuda_context: int = 500 * MIB  # driver + kernels, outside PyTorch's allocator
    cublas_workspace: int = 32 * MIB
    frag_fraction: float = 0.04  # reserved beyond allocated, as a share of allocated
    logits_slack: float = 1.0  # cached blocks left by the standard loss, in units of 4 x logits
    activation_scale: float = 1.0  # measured / modelled, for activations and loss
    source: str = "default"


@dataclass(frozen=True)
class Machine:
    """What the estimate knows about the training machine. The defaults describe the reference
    machine: Linux with the worker's allocator set-up, no liger-kernel, no calibration."""

    overheads: Overheads = Overheads()
    # The worker's allocator grows segments in place (expandable_segments:True): reserved stays
    # near allocated. It sets them on Linux unless the user configured the allocator.
    expandable_segments: bool = True
    # liger-kernel is installed: the worker patches RMSNorm, RoPE and SwiGLU on CUDA (unless it
    # compiles the layers).
    fused_kernels: bool = False


REFERENCE_MACHINE = Machine()


def machine_here() -> Machine:
    """This machine: its stored calibration, the allocator a worker started here uses, liger-kernel."""
    from studio.core.vram.calibration import current_overheads

    return Machine(overheads=current_overheads(), expandable_segments=worker_uses_expandable_segments(),
                   fused_kernels=liger_installed())


def worker_uses_expandable_segments() -> bool:
    """What the worker's allocator set-up does in this environment (studio.core.engine_rules)."""
    return expandable_segments(os.environ)


@lru_cache(maxsize=1)
def liger_installed() -> bool:
    """Whether liger-kernel is importable here (the worker then patches RMSNorm, RoPE, SwiGLU)."""
    try:
        return importlib.util.find_spec("liger_kernel") is not None
    except (ImportError, ValueError):
        return False
