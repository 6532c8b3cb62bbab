"""What every method config shares: display metadata, availability, and what a method contributes to
the parameter count and the VRAM estimate (``trainable_params``, ``vram_terms``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict

from studio.core.models import LinearShape, ModelFacts

# The estimator's families (studio/core/vram): which memory formulas describe a method.
# lora: low-rank adapters beside chosen linears; ia3: scaling vectors; waveft: sparse spectral
# updates; prompt: virtual tokens or prefixes; full / galore / lisa / freeze: the model's own weights.
FULL_PARAMETER_FAMILIES = frozenset({"full", "galore", "lisa", "freeze"})


@dataclass(frozen=True)
class MethodInfo:
    """Human-facing facts about a method, shown on the method page."""

    title: str
    summary: str  # one sentence: what it does
    when_to_pick: str  # one or two sentences
    costs: str  # known speed/memory costs, honestly stated
    mergeable: bool  # can the trained weights be folded into the base model?
    merge_note: str = ""  # why not, when mergeable is False; how, when merging has a catch
    family: str = "LoRA family"  # heading the method page groups choices under


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class VramTerms:
    """What the VRAM estimator needs to know about one method's settings on one model."""

    family: str  # lora | ia3 | waveft | prompt | full | galore | lisa | freeze
    # (numel, how many) for every trainable tensor: sizes decide 8-bit and paged optimizer state
    tensors: tuple[tuple[int, int], ...] = ()
    targets: tuple[LinearShape, ...] = ()  # the adapted linear modules of a decoder layer
    rank: int = 16
    dropout: float = 0.0
    dora: bool = False  # magnitude x direction: the update's column norm every forward
    ia3_ff: tuple[str, ...] = ()  # targets IA3 scales at their input (feed-forward modules)
    extra_state_bytes: int = 0  # per trainable parameter beside the optimizer's (AdaLoRA's importance EMAs)
    quant_bits: int = 0  # the frozen base quantized to 4 or 8 bits; 0 = not
    double_quant: bool = True
    compute_bytes: int = 2  # the dtype a quantized base's weights are dequantized to
    bf16_layers: int = 0  # decoder layers a quantized base keeps unquantized (QR-Adaptor)
    extra_positions: int = 0  # virtual tokens added to every sequence
    trainable_layers: int = 0  # decoder layers that train at once (LISA, freeze-tuning)
    train_embeddings: bool = False
    train_head: bool = False
    galore_rank: int = 128  # GaLore's projection rank
    notes: tuple[str, ...] = ()

    @property
    def full_parameter(self) -> bool:
        """Trains the model's own weights (in their dtype) rather than fp32 adapters on a frozen base."""
        return self.family in FULL_PARAMETER_FAMILIES

    @property
    def head_trains(self) -> bool:
        """The output head is among the trained tensors."""
        return self.family in ("full", "galore", "lisa") or (self.family == "freeze" and self.train_head)


class MethodBase(BaseModel):
    """Base class of all method configs. Subclasses set ``name`` (a Literal), ``info`` and
    ``vram_family``, and say what they train (``trainable_params``, ``vram_terms``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    info: ClassVar[MethodInfo]
    vram_family: ClassVar[str]  # a VramTerms.family
    needs_cuda: ClassVar[bool] = False
    needs_bitsandbytes: ClassVar[bool] = False
    # A learning rate that suits the method on typical models; comparisons use it so that every
    # method is run near its own good setting rather than at one shared rate that favours LoRA.
    recommended_lr: ClassVar[float] = 2e-4
    # Architectures (config.json model_type) the method supports; None = any decoder-only model.
    supported_model_types: ClassVar[Optional[frozenset[str]]] = None
    # The same method on a 4/8-bit base (a registered name), which a run that does not fit is offered.
    quantized_variant: ClassVar[Optional[str]] = None

    @classmethod
    def availability(cls, *, has_cuda: bool, has_bitsandbytes: bool,
                     facts: Optional[ModelFacts] = None) -> Availability:
        """Whether this method can run here; the reason is shown beside a disabled choice.

        ``facts`` is the chosen model's ModelFacts (studio.core.models) when one is chosen.
        """
        if cls.needs_cuda and not has_cuda:
            return Availability(False, f"{cls.info.title} needs an NVIDIA GPU with CUDA; none was found.")
        if cls.needs_bitsandbytes and not has_bitsandbytes:
            return Availability(
                False,
                f"{cls.info.title} needs the bitsandbytes package, which is not installed "
                "(pip install bitsandbytes).",
            )
        model_type = getattr(facts, "model_type", None) if facts is not None else None
        if cls.supported_model_types is not None and model_type and model_type not in cls.supported_model_types:
            names = ", ".join(sorted(cls.supported_model_types))
            return Availability(False, f"{cls.info.title} supports only these architectures: {names}; "
                                       f"this model is {model_type!r}.")
        return Availability(True)

    def fitted(self, facts: ModelFacts) -> "MethodBase":
        """These settings adjusted to fit the model where a default cannot (a comparison uses it for
        methods the user did not tune); the same object when nothing needs changing."""
        return self

    def problems(self, facts: ModelFacts) -> list[str]:
        """What is wrong with these settings for this particular model (empty when nothing is).

        Checks that need the model's shape (layer counts, module names, divisibility) live here
        rather than in field validators, which cannot see the model.
        """
        return []

    def trainable_params(self, facts: ModelFacts) -> int:
        """Parameters this method trains on the model (at the start of training), as PEFT builds them."""
        raise NotImplementedError(f"{type(self).__name__} has no parameter formula")

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        """The method's part of the VRAM estimate on this model."""
        raise NotImplementedError(f"{type(self).__name__} has no VRAM terms")
