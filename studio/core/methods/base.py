"""What every method config shares: display metadata, mergeability and an availability check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict


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


class MethodBase(BaseModel):
    """Base class of all method configs. Subclasses set ``name`` (a Literal) and ``info``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    info: ClassVar[MethodInfo]
    needs_cuda: ClassVar[bool] = False
    needs_bitsandbytes: ClassVar[bool] = False
    # A learning rate that suits the method on typical models; comparisons use it so that every
    # method is run near its own good setting rather than at one shared rate that favours LoRA.
    recommended_lr: ClassVar[float] = 2e-4
    # Architectures (config.json model_type) the method supports; None = any decoder-only model.
    supported_model_types: ClassVar[Optional[frozenset[str]]] = None

    @classmethod
    def availability(cls, *, has_cuda: bool, has_bitsandbytes: bool, facts: Any = None) -> Availability:
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

    def fitted(self, facts: Any) -> "MethodBase":
        """These settings adjusted to fit the model where a default cannot (a comparison uses it for
        methods the user did not tune); the same object when nothing needs changing."""
        return self

    def problems(self, facts: Any) -> list[str]:
        """What is wrong with these settings for this particular model (empty when nothing is).

        Checks that need the model's shape (layer counts, module names, divisibility) live here
        rather than in field validators, which cannot see the model.
        """
        return []
