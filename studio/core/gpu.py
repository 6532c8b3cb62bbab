"""What the NVIDIA GPUs are doing right now, read through NVML (nvidia-ml-py) without torch.

``gpu_snapshot()`` returns one ``GpuState`` per GPU, or None when there is no NVIDIA driver or
GPU (the GUI then says "training on CPU"). pynvml is imported lazily and NVML is initialised
once; a failed initialisation is remembered so polling on a GPU-less machine costs nothing.
Tests swap the source with ``use_fake([...])``.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class GpuState:
    index: int
    name: str
    mem_used: int  # bytes
    mem_total: int  # bytes
    util_percent: Optional[int] = None  # None when the driver does not report it
    temperature_c: Optional[int] = None
    power_w: Optional[float] = None

    @property
    def mem_fraction(self) -> float:
        return self.mem_used / self.mem_total if self.mem_total else 0.0


_lock = threading.Lock()
_nvml_state: Optional[bool] = None  # None = not tried, True = initialised, False = unavailable
_nvml_error = ""
_fake: Optional[Callable[[], Optional[list[GpuState]]]] = None


def use_fake(states: Optional[list[GpuState]] | Callable[[], Optional[list[GpuState]]]) -> None:
    """Replace NVML with fixed states or a callable returning them (None = "no NVIDIA GPU")."""
    global _fake
    _fake = states if callable(states) else (lambda: states)


def reset() -> None:
    """Back to the real NVML source (used by tests after ``use_fake``)."""
    global _fake, _nvml_state
    _fake = None
    _nvml_state = None


def _init_nvml():
    global _nvml_state, _nvml_error
    with _lock:
        if _nvml_state is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml_state = True
            except Exception as e:  # no library, no driver, no GPU: all mean "no NVIDIA GPU"
                _nvml_state = False
                _nvml_error = str(e) or type(e).__name__
        if _nvml_state:
            import pynvml

            return pynvml
        return None


def gpu_snapshot() -> Optional[list[GpuState]]:
    """Current state of every NVIDIA GPU, or None when none can be read."""
    if _fake is not None:
        return _fake()
    nvml = _init_nvml()
    if nvml is None:
        return None
    try:
        states = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            name = nvml.nvmlDeviceGetName(h)
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            states.append(GpuState(i, name, int(mem.used), int(mem.total), _opt(lambda: nvml.nvmlDeviceGetUtilizationRates(h).gpu),
                                   _opt(lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
                                   _opt(lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0)))
        return states or None
    except Exception:
        return None


def unavailable_reason() -> str:
    """Why gpu_snapshot() returned None (for the diagnostics and the tooltip)."""
    if _nvml_state is False:
        return f"NVML not available: {_nvml_error}"
    return ""


def has_cuda_gpu() -> bool:
    """Whether an NVIDIA GPU is visible to the driver (a torch-free proxy for CUDA)."""
    snap = gpu_snapshot()
    return bool(snap)


def has_bitsandbytes() -> bool:
    """Whether bitsandbytes is installed, without importing it (it loads CUDA libraries)."""
    try:
        return importlib.util.find_spec("bitsandbytes") is not None
    except (ImportError, ValueError):
        return False


def _opt(read):
    try:
        return read()
    except Exception:
        return None
