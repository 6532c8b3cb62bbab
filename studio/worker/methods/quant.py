"""bitsandbytes helpers: quantization configs and turning 4/8-bit layers back into bf16 for merging."""

from __future__ import annotations

from typing import Any, Optional

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def bnb_config(bits: int, quant_type: str, double_quant: bool, compute_dtype: str,
               skip_modules: Optional[list[str]] = None) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    dtype = getattr(torch, DTYPES[compute_dtype])
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip_modules)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=dtype,
        # Storage in the compute dtype keeps every non-quantized tensor in that dtype as well: no fp32 upcast.
        bnb_4bit_quant_storage=dtype, llm_int8_skip_modules=skip_modules,
    )


def has_bnb_layers(model: Any) -> bool:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return False  # nothing can be quantized without bitsandbytes
    return any(isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)) for m in model.modules())


def dequantize_bnb_layers(model: Any, dtype: Any = None) -> int:
    """Replace every bitsandbytes 4/8-bit linear layer in ``model`` with a plain nn.Linear holding the
    dequantized weight (in ``dtype``, default the layer's compute dtype or bf16). Returns how many."""
    import torch

    try:
        import bitsandbytes as bnb
    except ImportError:
        return 0  # nothing can be quantized without bitsandbytes
    from peft.utils.integrations import dequantize_bnb_weight

    replaced = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)):
            continue
        state = getattr(module, "state", None)
        weight = dequantize_bnb_weight(module.weight, state=state)
        target = dtype or getattr(module, "compute_dtype", None) or torch.bfloat16
        linear = torch.nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                                 device=weight.device, dtype=target)
        with torch.no_grad():
            linear.weight.copy_(weight.to(target))
            if module.bias is not None:
                linear.bias.copy_(module.bias.to(target))
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, linear)
        replaced += 1
    if replaced:
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        for obj in (inner, getattr(inner, "config", None)):
            if obj is None:
                continue
            for attr in ("is_loaded_in_4bit", "is_loaded_in_8bit", "is_quantized"):
                if getattr(obj, attr, False):
                    setattr(obj, attr, False)
        if hasattr(inner, "hf_quantizer"):
            inner.hf_quantizer = None
        if getattr(inner, "config", None) is not None and hasattr(inner.config, "quantization_config"):
            del inner.config.quantization_config
    return replaced
