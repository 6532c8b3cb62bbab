"""Optional fused GPU kernels (Liger) and torch.compile: applied only where they are safe.

Liger's RMSNorm, RoPE and SwiGLU kernels are applied on CUDA when ``liger-kernel`` is importable.
Its fused cross-entropy is not used: the studio's chunked loss already keeps logits small. The
patched model must give the same logits as before on a few probe tokens; if it does not, the
caller reloads the model unpatched. torch.compile stays off: on LoRA it costs minutes of compile
time per run and recompiles whenever the sequence length changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class KernelResult:
    applied: bool
    broke_model: bool
    reason: str


def apply_liger(model: Any, device: str, log: Callable[[str], None]) -> KernelResult:
    if device != "cuda":
        return KernelResult(False, False, "off (Liger kernels are for CUDA GPUs)")
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
    except ImportError:
        return KernelResult(False, False, "off (liger-kernel is not installed; the plain PyTorch kernels are used)")
    before = _probe_logits(model)
    try:
        _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                        fused_linear_cross_entropy=False)
    except Exception as e:  # an unsupported architecture: nothing was patched, or patching stopped early
        log(f"Liger kernels could not be applied ({type(e).__name__}: {e})")
        return KernelResult(False, True, f"off (Liger does not support this model: {type(e).__name__})")
    after = _probe_logits(model)
    if before is None or after is None or not _close(before, after):
        log("Liger kernels changed the model's outputs on probe tokens; reloading the model without them")
        return KernelResult(False, True, "off (Liger changed this model's outputs; reloaded without it)")
    return KernelResult(True, False, "on: Liger RMSNorm, RoPE and SwiGLU kernels (checked against the unpatched "
                                     "model's logits)")


def compile_choice() -> str:
    return "off (compiling costs minutes per run and recompiles for every new sequence length)"


def _probe_logits(model: Any) -> Any:
    import torch

    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    vocab = int(getattr(c, "vocab_size", 0) or 0)
    if vocab < 8:
        return None
    ids = torch.randint(3, vocab, (1, 16), generator=torch.Generator().manual_seed(0))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            return model(input_ids=ids.to(device), use_cache=False).logits.float().cpu()
    except Exception:
        return None
    finally:
        model.train(was_training)


def _close(a: Any, b: Any) -> bool:
    # bf16 kernels round differently; a broken kernel is off by O(1), not by O(1e-2)
    return float((a - b).abs().max()) <= 5e-2 * max(1.0, float(b.abs().max()))
