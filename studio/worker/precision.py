"""Adapter compute precision: fp32 master weights, arithmetic in the model's precision.

PEFT keeps adapter weights in fp32 (good: small updates are not rounded away) and, to match them,
casts every adapter's INPUT to fp32: for each targeted layer a full-size fp32 copy of the
activations is made, multiplied in fp32 (no tensor cores) and kept for backward. The studio keeps
the fp32 weights but turns that input cast off and runs the forward under ``torch.autocast``:
the small weights are cast to bf16/fp16 once per step instead, the products run on tensor cores,
and the saved activation is the one the base layer already keeps. Optimizer state and the
weights themselves stay fp32, so training follows the same trajectory within bf16 noise.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Optional

from studio.core.engine_choice import Choice


def decide_adapter_compute(setting: str, model: Any, dtype: Any, device: str) -> tuple[Optional[Any], Choice]:
    """(autocast dtype or None, the choice) for a wrapped model whose frozen base is in ``dtype``."""
    import torch

    if dtype not in (torch.bfloat16, torch.float16):
        return None, Choice("fp32", "the model itself trains in fp32")
    if setting == "fp32":
        return None, Choice("fp32", "set in the config: adapter inputs are cast to fp32 as PEFT does by default")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable or all(p.dtype == dtype for p in trainable):
        return None, Choice(_name(dtype), f"the trained weights are already {_name(dtype)}")
    if not any(p.dtype == torch.float32 for p in trainable):
        return None, Choice("as stored", "no fp32 trained weights")
    if device not in ("cuda", "cpu"):
        return None, Choice("fp32", f"autocast is not used on {device}")
    switched = disable_input_casting(model)
    where = f"{switched} adapter layers" if switched else "the trained layers"
    return dtype, Choice(f"{_name(dtype)} compute with fp32 master weights",
                         f"auto: autocast, no fp32 copies of activations in {where}")


def master_weights(placement: Any, runtime: Any) -> tuple[Any, Optional[Choice]]:
    """(dtype to load the model in, the choice or None): fp16 training of the model's own weights loads
    them in fp32 and computes in fp16 under autocast, the standard mixed-precision recipe. Pure fp16
    weights would lose small updates to rounding, and the loss scaler cannot unscale fp16 gradients."""
    import torch

    if placement.precision != "fp16" or not getattr(runtime, "trains_base_weights", False):
        return None, None
    return torch.float32, Choice("fp32 master weights, fp16 compute",
                                 "auto: this GPU has no bf16, and fp16 weights would round away small updates")


def disable_input_casting(model: Any) -> int:
    """Stop PEFT layers from casting their input to the adapter's fp32 dtype; returns how many."""
    count = 0
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False
            count += 1
    return count


def compute_context(device: str, dtype: Optional[Any]) -> Callable[[], ContextManager]:
    """A factory of the context every forward pass runs in (autocast, or nothing)."""
    if dtype is None:
        return contextlib.nullcontext
    import torch

    return lambda: torch.autocast(device_type=device, dtype=dtype)


def _name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "").replace("bfloat16", "bf16").replace("float16", "fp16")
