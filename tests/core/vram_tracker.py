"""Allocated-bytes tracking on the CPU: what ``torch.cuda.max_memory_allocated`` would count.

A TorchDispatchMode sees every tensor an operator returns (forward, backward, optimizer); each new
storage adds its size to ``live`` until the storage dies (a weakref finalizer), and ``peak`` keeps
the largest ``live`` since the last ``reset``. Tensors that existed before the tracker started
(weights loaded earlier) are not counted: callers add them. Used by the VRAM tests and by
benchmarks/vram_cpu_trace.py to check the estimator's phases against the real training code.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class AllocTracker(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: dict[int, int] = {}
        self.marks: list[tuple[str, int, int]] = []  # (label, live, peak since the previous mark)

    def reset(self) -> None:
        self.peak = self.live

    def mark(self, label: str) -> None:
        self.marks.append((label, self.live, self.peak))
        self.peak = self.live

    def _gone(self, key: int) -> None:
        self.live -= self._seen.pop(key, 0)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        # In-place ops and views return storage their inputs already had (weights loaded before the
        # tracker started among them): not an allocation.
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = st.data_ptr()
                if key and key not in self._seen and key not in inputs:
                    n = st.nbytes()
                    self._seen[key] = n
                    self.live += n
                    weakref.finalize(st, self._gone, key)
        self.peak = max(self.peak, self.live)
        return out
