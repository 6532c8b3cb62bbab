"""LoRA and QLoRA: low-rank adapters on a full-precision or 4/8-bit quantized base."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, field_validator

from studio.core.methods.base import MethodBase, MethodInfo

TargetModules = Union[Literal["all-linear"], list[str]]


class LoraMethod(MethodBase):
    name: Literal["lora"] = "lora"
    r: int = Field(16, ge=1, le=1024, title="Rank",
                   description="Rank of the low-rank update. Higher learns more, costs more memory; 8-64 is typical.")
    alpha: float = Field(32.0, gt=0, le=4096, title="Alpha",
                         description="Scale of the update (alpha / rank). Usually 2 x rank.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, title="Dropout",
                           description="Dropout on the adapter's input. 0 is fastest; 0.05-0.1 can help on small datasets.")
    target_modules: TargetModules = Field(
        "all-linear", title="Target modules",
        description="Which linear layers get adapters: 'all-linear' (every projection except the output head) "
                    "or a list of module names such as q_proj, v_proj.")
    use_rslora: bool = Field(False, title="rsLoRA scaling",
                             description="Scale by alpha / sqrt(rank) instead of alpha / rank; steadier at high ranks.")

    info = MethodInfo(
        title="LoRA",
        summary="Trains two small low-rank matrices beside each chosen linear layer; the base weights stay frozen.",
        when_to_pick="The default: good quality, small memory overhead, fast, and the adapter is a few MB.",
        costs="About 4 bytes x adapter params for weights plus 12 for gradients and AdamW states; speed near the frozen model's.",
        mergeable=True,
    )

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: TargetModules) -> TargetModules:
        if isinstance(v, list):
            v = [m.strip() for m in v if m.strip()]
            if not v:
                raise ValueError("name at least one module, or use 'all-linear'")
        return v


class QLoraMethod(LoraMethod):
    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(4, title="Bits", description="Quantize the frozen base to 4 or 8 bits.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", title="4-bit type",
                                              description="NF4 suits normally distributed weights and is the usual choice.")
    double_quant: bool = Field(True, title="Double quantization",
                               description="Also quantize the quantization constants: saves ~0.4 bits per parameter.")
    compute_dtype: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", title="Compute dtype", description="Precision the dequantized weights are multiplied in.")

    info = MethodInfo(
        title="QLoRA",
        summary="LoRA on a base model quantized to 4 or 8 bits with bitsandbytes.",
        when_to_pick="When the bf16 model does not fit: an 8B model needs ~5.5 GB instead of ~15 GB for its weights.",
        costs="Slower than LoRA (dequantization each pass), most at short sequences; needs an NVIDIA GPU.",
        mergeable=True,
        merge_note="Merging dequantizes the base to bf16 and folds the adapter in.",
    )
    needs_cuda = True
    needs_bitsandbytes = True
