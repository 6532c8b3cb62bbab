"""How each fine-tuning method is applied to a loaded model inside the worker.

The worker's training loop knows nothing about methods; it asks ``runtime_for(cfg)`` for a
MethodRuntime and calls its hooks at fixed points:

    quantization_config(compute_dtype)   before loading: a BitsAndBytesConfig or None
    wrap(model)                          after loading: returns the model to train
    make_optimizer(model)                builds the optimizer (param groups, LoRA+, GaLore, 8-bit ...)
    on_step_end(model, step, total)      after each optimizer step (AdaLoRA budget, LISA re-sampling)
    save(model, out_dir)                 writes the trained weights (PEFT adapter format for adapters)

Each method family lives in its own module and registers its runtime class in RUNTIMES.
"""

from __future__ import annotations

from typing import Any

from studio.core.config import RunConfig
from studio.worker.methods.base import MethodRuntime

RUNTIMES: dict[str, type[MethodRuntime]] = {}


def register(*names: str):
    def deco(cls: type[MethodRuntime]) -> type[MethodRuntime]:
        for n in names:
            RUNTIMES[n] = cls
        return cls
    return deco


def runtime_for(cfg: RunConfig) -> MethodRuntime:
    _load_families()
    try:
        cls = RUNTIMES[cfg.method.name]
    except KeyError:
        raise ValueError(f"method {cfg.method.name!r} has no worker implementation") from None
    return cls(cfg)


def _load_families() -> None:
    # Import for the side effect of registration; each module registers its runtimes.
    from studio.worker.methods import (adalora, full, galore, ia3, lora, prompts, qr_adaptor,  # noqa: F401
                                       vector)


__all__ = ["MethodRuntime", "register", "runtime_for", "RUNTIMES"]
