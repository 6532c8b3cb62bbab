"""Optional fused GPU kernels (Liger) and regional torch.compile: applied only where they are safe.

Liger's RMSNorm, RoPE and SwiGLU kernels are applied on CUDA when ``liger-kernel`` is importable.
Its fused cross-entropy is not used: the studio's chunked loss already keeps logits small. The
patched model must give the same logits as before on a few probe tokens; if it does not, the
caller reloads the model unpatched.

torch.compile is applied per decoder layer ("regional compilation"): the layers share one class,
so one compiled graph serves them all and the compile takes seconds to a minute instead of the
many minutes a whole-model compile costs; sequence lengths are marked dynamic after the first
change, so varying batch lengths do not recompile. It pays only on runs long enough, on CUDA.
If the first step fails inside a compiled layer, the layers go back to eager and the step reruns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from studio.core.engine_choice import SET_OFF, Choice
from studio.core.engine_rules import COMPILE_MIN_STEPS, compile_wanted


@dataclass
class KernelResult:
    applied: bool
    broke_model: bool
    choice: Choice


def apply_liger(model: Any, device: str, log: Callable[[str], None], compiled: bool = False) -> KernelResult:
    if device != "cuda":
        return KernelResult(False, False, Choice("off", "Liger kernels are for CUDA GPUs"))
    if compiled:
        # Inductor fuses RMSNorm, RoPE and SwiGLU itself inside the compiled layers; Liger's Triton
        # kernels there would only split its graphs.
        return KernelResult(False, False, Choice("off", "the compiled layers get fused RMSNorm/RoPE/SwiGLU kernels "
                                                        "from torch.compile"))
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
    except ImportError:
        return KernelResult(False, False, Choice("off", "liger-kernel is not installed; the plain PyTorch kernels "
                                                        "are used"))
    before = _probe_logits(model)
    try:
        _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                        fused_linear_cross_entropy=False)
    except Exception as e:  # an unsupported architecture: nothing was patched, or patching stopped early
        log(f"Liger kernels could not be applied ({type(e).__name__}: {e})")
        return KernelResult(False, True, Choice("off", f"Liger does not support this model: {type(e).__name__}"))
    after = _probe_logits(model)
    if before is None or after is None or not _close(before, after):
        log("Liger kernels changed the model's outputs on probe tokens; reloading the model without them")
        return KernelResult(False, True, Choice("off", "Liger changed this model's outputs; reloaded without it"))
    return KernelResult(True, False, Choice("on", "Liger RMSNorm, RoPE and SwiGLU kernels, checked against the "
                                                  "unpatched model's logits"))




def decide_compile(setting: str, device: str, total_steps: int) -> tuple[bool, Choice]:
    """(compile the decoder layers?, the choice)."""
    if setting == "off":
        return False, SET_OFF
    if device != "cuda":
        return False, Choice("off", "compiled kernels are built for CUDA GPUs; CPU training runs eager")
    why_not = _compile_unavailable()
    if why_not:
        return False, Choice("off", why_not)
    if setting == "on":
        return True, Choice("on", "set in the config: each decoder layer compiled")
    if not compile_wanted(setting, total_steps):
        return False, Choice("off", f"auto: a run of {total_steps} steps would spend longer compiling than it "
                                    f"saves; compiled from {COMPILE_MIN_STEPS} steps")
    return True, Choice("on", "auto: each decoder layer compiled once, shapes dynamic; the first step includes the "
                              "compile")


def _compile_unavailable() -> str:
    try:
        import torch

        if not hasattr(torch, "compile"):
            return "this PyTorch has no torch.compile"
        import triton  # noqa: F401  - inductor's GPU code generator
    except ImportError:
        return "triton is not installed, so torch.compile cannot build GPU kernels"
    return ""


def decoder_layers(model: Any) -> list[Any]:
    """The repeated decoder blocks of a (PEFT-wrapped) transformers model: the largest ModuleList
    whose members share one class."""
    import torch

    best: list[Any] = []
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > len(best):
            kinds = {type(m) for m in module}
            if len(kinds) == 1:
                best = list(module)
    return best


def compile_layers(model: Any, log: Callable[[str], None], backend: str = "inductor") -> int:
    """Compile each decoder layer in place; returns how many."""
    import torch

    layers = decoder_layers(model)
    if not layers:
        return 0
    # One class, many instances: allow a recompile per distinct layer variant (sliding vs full
    # attention, per-layer ranks) without falling back to eager.
    limit = max(64, 4 * len(layers))
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, limit)
    if hasattr(torch._dynamo.config, "accumulated_cache_size_limit"):
        torch._dynamo.config.accumulated_cache_size_limit = max(torch._dynamo.config.accumulated_cache_size_limit,
                                                                 4 * limit)
    for layer in layers:
        layer.compile(dynamic=None, backend=backend)
    log(f"compile: {len(layers)} decoder layers ({type(layers[0]).__name__}) set to compile at the first step")
    return len(layers)


def uncompile_layers(model: Any) -> int:
    """Put compiled layers back to eager (after a failed compile); returns how many."""
    import torch

    count = 0
    for layer in decoder_layers(model):
        if getattr(layer, "_compiled_call_impl", None) is not None:
            layer._compiled_call_impl = None
            count += 1
    torch._dynamo.reset()
    return count


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
    """bf16 kernels round differently, and over 32+ random layers the rounding adds up to more than
    a per-element bound allows; a broken kernel (wrong rotation, wrong norm, wrong scale) is off by
    the logits' own size. So: the elementwise bound, or a relative L2 error under 10%."""
    if float((a - b).abs().max()) <= 5e-2 * max(1.0, float(b.abs().max())):
        return True
    return float((a - b).double().norm()) <= 0.1 * float(b.double().norm())
