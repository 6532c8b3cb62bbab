"""GpuMonitor: polls NVML once a second and publishes the snapshot (None = no NVIDIA GPU).

One monitor is shared by the status bar and the train page, so NVML is read once per tick.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QObject, QTimer, Signal

from studio.core import gpu
from studio.ui import qt_compat


class GpuMonitor(QObject):
    sig_snapshot_taken = Signal(object)  # list[GpuState] | None

    def __init__(self, interval_ms: int = 1000, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.last: Optional[list[gpu.GpuState]] = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(interval_ms)

    def poll(self) -> None:
        qt_compat.top_up()
        self.last = gpu.gpu_snapshot()
        self.sig_snapshot_taken.emit(self.last)


def describe(snapshot: Optional[list[gpu.GpuState]]) -> str:
    """One line for the status bar."""
    if not snapshot:
        return "No NVIDIA GPU — training on CPU"
    parts = []
    for g in snapshot:
        util = f", {g.util_percent}% busy" if g.util_percent is not None else ""
        parts.append(f"GPU {g.index} {g.name}: {g.mem_used / 2**30:.1f} / {g.mem_total / 2**30:.1f} GB{util}")
    return " · ".join(parts)
