"""The LoRA family: LoRA (with rsLoRA, init choices, rank/alpha patterns), QLoRA, DoRA, QDoRA, LoRA+.

All of them train the same two low-rank matrices per chosen linear layer; they differ in the
base's precision (QLoRA/QDoRA), in how the update is applied (DoRA: magnitude x direction) and
in the optimizer (LoRA+: a larger learning rate for B).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.methods.patterns import normalise, parse_pattern_map
from studio.core.methods.targets import TargetModules, check_targets, clean_targets, missing_note, select_targets
from studio.core.models import LinearShape, ModelFacts

LoraInit = Literal["default", "gaussian", "pissa", "olora", "loftq"]

# Init choices that rewrite the base weights from an SVD/QR of them: impossible on a quantized base.
_REWRITES_BASE = ("pissa", "olora")

_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn", "c_proj", "query_key_value", "dense"}


def _full_name(layer: int, module: str) -> str:
    # Llama-style naming, close enough for rank/alpha pattern matching in counts.
    section = "self_attn" if module in _ATTENTION else "mlp"
    return f"model.layers.{layer}.{section}.{module}"


def _pattern_value(patterns: dict[str, int], name: str, default: int) -> int:
    # PEFT's rule (peft.utils.other.get_pattern_key): the first key that matches the name's end.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def lora_params(facts: ModelFacts, targets: tuple[LinearShape, ...], r: int, ranks: dict[str, int], dora: bool,
                layer_ranks: Optional[dict[int, int]] = None) -> int:
    """LoRA's A and B (and DoRA's magnitude) on ``targets`` in every layer, with per-module rank
    patterns and per-layer ranks (0 = no adapter on that layer)."""
    n = 0
    for layer in range(facts.num_layers):
        base_r = layer_ranks.get(layer, r) if layer_ranks is not None else r
        if base_r == 0:
            continue
        for s in targets:
            rank = _pattern_value(ranks, _full_name(layer, s.name), base_r) if ranks else base_r
            n += s.count * (rank * (s.in_features + s.out_features) + (s.out_features if dora else 0))
    return n


def lora_tensors(targets: tuple[LinearShape, ...], rank: int, layers: int, *, dora: bool = False,
                 rank_vector: bool = False) -> tuple[tuple[int, int], ...]:
    """The estimator's view of LoRA-style adapters at one rank: A and B per target (AdaLoRA's
    singular values, DoRA's magnitude), in every layer."""
    out: list[tuple[int, int]] = []
    for m in targets:
        out.append((rank * m.in_features, m.count * layers))
        out.append((rank * m.out_features, m.count * layers))
        if rank_vector:
            out.append((rank, m.count * layers))
        if dora:
            out.append((m.out_features, m.count * layers))
    return tuple(out)


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
    init: LoraInit = Field(
        "default", title="Initialisation",
        description="How the adapter starts. Default: A random (Kaiming), B zero, so training starts from the base "
                    "model. Gaussian: A from a normal distribution. PiSSA: A and B from the top singular vectors "
                    "of each weight (faster convergence; the base keeps the residual). OLoRA: from a QR "
                    "decomposition. LoftQ (QLoRA 4-bit only): chosen to cancel the 4-bit quantization error.")
    rank_pattern: str = Field(
        "", title="Rank per layer",
        description="Different ranks for some modules: pattern=rank pairs, e.g. 'down_proj=32, layers\\.0\\..*=8'. "
                    "A pattern is a regular expression matched against the end of a module's full name; "
                    "modules no pattern matches use Rank.")
    alpha_pattern: str = Field(
        "", title="Alpha per layer",
        description="Different alphas for some modules, in the same pattern=value form as Rank per layer.")

    info = MethodInfo(
        title="LoRA",
        summary="Trains two small low-rank matrices beside each chosen linear layer; the base weights stay frozen.",
        when_to_pick="The default: good quality, small memory overhead, fast, and the adapter is a few MB.",
        costs="About 4 bytes x adapter params for weights plus 12 for gradients and AdamW states; speed near the frozen model's.",
        mergeable=True,
        merge_note="Merging adds B x A x scale into each weight; the merged model runs at the base model's speed.",
    )
    vram_family = "lora"
    uses_dora: ClassVar[bool] = False  # magnitude x direction (DoRA, QDoRA)
    quantized_variant = "qlora"

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: TargetModules) -> TargetModules:
        return clean_targets(v)

    @field_validator("rank_pattern", "alpha_pattern", mode="before")
    @classmethod
    def _pattern_text(cls, v: Any) -> Any:
        return normalise(v)

    @field_validator("rank_pattern")
    @classmethod
    def _rank_pattern_ok(cls, v: str) -> str:
        parse_pattern_map(v, int)
        return v

    @field_validator("alpha_pattern")
    @classmethod
    def _alpha_pattern_ok(cls, v: str) -> str:
        parse_pattern_map(v, float)
        return v

    @model_validator(mode="after")
    def _init_fits(self) -> "LoraMethod":
        if self.init == "loftq" and not self.quantized_base():
            raise ValueError("init: LoftQ initialises the adapter to cancel 4-bit quantization error; "
                             "choose QLoRA (or QDoRA) with 4 bits to use it")
        return self

    def quantized_base(self) -> bool:
        return False

    def rank_map(self) -> dict[str, int]:
        return parse_pattern_map(self.rank_pattern, int)

    def alpha_map(self) -> dict[str, float]:
        return parse_pattern_map(self.alpha_pattern, float)

    def problems(self, facts: ModelFacts) -> list[str]:
        return check_targets(self.target_modules, facts)

    def trainable_params(self, facts: ModelFacts) -> int:
        targets, _ = select_targets(self.target_modules, facts.linear_shapes)
        return lora_params(facts, targets, self.r, self.rank_map(), dora=self.uses_dora)

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # The estimate takes Rank for every module: rank patterns change the count, not the estimate.
        targets, missing = select_targets(self.target_modules, facts.linear_shapes)
        return VramTerms(self.vram_family, lora_tensors(targets, self.r, facts.num_layers, dora=self.uses_dora),
                         targets=targets, rank=self.r, dropout=self.dropout, dora=self.uses_dora,
                         notes=missing_note(missing, facts))


class QLoraMethod(LoraMethod):
    name: Literal["qlora"] = "qlora"  # type: ignore[assignment]
    bits: Literal[4, 8] = Field(4, title="Bits", description="Quantize the frozen base to 4 or 8 bits.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", title="4-bit type",
                                              description="NF4 suits normally distributed weights and is the usual choice.")
    double_quant: bool = Field(True, title="Double quantization",
                               description="Also quantize the quantization constants: saves ~0.4 bits per parameter.")
    compute_dtype: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", title="Compute dtype",
        description="Precision the dequantized weights are multiplied in; the non-quantized parameters "
                    "(norms, embeddings, adapter) stay in this dtype too.")

    info = MethodInfo(
        title="QLoRA",
        summary="LoRA on a base model quantized to 4 or 8 bits with bitsandbytes.",
        when_to_pick="When the bf16 model does not fit: an 8B model needs ~5.5 GB instead of ~15 GB for its weights.",
        costs="Slower than LoRA (dequantization each pass), most at short sequences; needs an NVIDIA GPU. "
              "Measured on an H100 without the fp32 upcast tutorials add: ~94% of bf16 LoRA speed on an 8B model.",
        mergeable=True,
        merge_note="Merging loads the base in bf16 (not quantized) and folds the adapter in, so the merged model "
                   "is a normal bf16 model; it differs slightly from what was trained on (the 4-bit base).",
    )
    needs_cuda = True
    needs_bitsandbytes = True
    quantized_variant = None

    @model_validator(mode="after")
    def _quant_init_fits(self) -> "QLoraMethod":
        if self.init in _REWRITES_BASE:
            raise ValueError(f"init: {self.init.upper() if self.init == 'pissa' else 'OLoRA'} rewrites the base weights, "
                             "which a quantized base cannot hold; use Default, Gaussian or LoftQ")
        if self.init == "loftq" and self.bits != 4:
            raise ValueError("init: LoftQ needs the 4-bit base; set Bits to 4")
        return self

    def quantized_base(self) -> bool:
        return True

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        return replace(super().vram_terms(facts), quant_bits=self.bits, double_quant=self.double_quant,
                       compute_bytes=4 if self.compute_dtype == "fp32" else 2)


class DoraMethod(LoraMethod):
    name: Literal["dora"] = "dora"  # type: ignore[assignment]

    info = MethodInfo(
        title="DoRA",
        summary="LoRA that splits each weight into a magnitude and a direction and learns both "
                "(the low-rank update changes the direction, a vector the magnitude).",
        when_to_pick="When LoRA plateaus below full fine-tuning, especially at low ranks; often a little better "
                     "than LoRA at the same rank.",
        costs="Measured 1.8x LoRA's step time on an H100 (PEFT's implementation recomputes weight norms every "
              "step) and slightly more memory; one extra vector per adapted layer.",
        mergeable=True,
        merge_note="Merging folds the magnitude and direction into one weight; the merged model runs at base speed.",
    )
    uses_dora = True
    quantized_variant = "qdora"


class QDoraMethod(QLoraMethod):
    name: Literal["qdora"] = "qdora"  # type: ignore[assignment]

    info = MethodInfo(
        title="QDoRA",
        summary="DoRA on a 4/8-bit quantized base: DoRA's quality with QLoRA's memory.",
        when_to_pick="When DoRA's quality is wanted but the bf16 model does not fit.",
        costs="DoRA's extra step time on top of QLoRA's dequantization; the weight norm needs the dequantized "
              "weight every step. Needs an NVIDIA GPU.",
        mergeable=True,
        merge_note="Merging loads the base in bf16 and folds magnitude and direction in (see QLoRA).",
    )
    uses_dora = True


class LoraPlusMethod(LoraMethod):
    name: Literal["loraplus"] = "loraplus"  # type: ignore[assignment]
    lr_ratio: float = Field(16.0, ge=1.0, le=1024.0, title="B learning-rate ratio",
                            description="B matrices learn this many times faster than A (the LoRA+ paper "
                                        "suggests 16; 1 gives plain LoRA).")

    info = MethodInfo(
        title="LoRA+",
        summary="LoRA with a larger learning rate for the B matrices than for A, which the LoRA+ paper shows "
                "is closer to optimal for wide models.",
        when_to_pick="A free improvement over LoRA in speed of convergence; same memory and step time.",
        costs="None over LoRA; one more knob (the ratio).",
        mergeable=True,
        merge_note="Identical to LoRA once trained: the adapter merges the same way.",
    )
    quantized_variant = None  # QLoRA would drop the B learning-rate ratio
