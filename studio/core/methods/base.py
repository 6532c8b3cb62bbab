"""What every method config shares: display metadata, mergeability and an availability check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class MethodInfo:
    """Human-facing facts about a method, shown on the method page."""

    title: str
    summary: str  # one sentence: what it does
    when_to_pick: str  # one or two sentences
    costs: str  # known speed/memory costs, honestly stated
    mergeable: bool  # can the trained weights be folded into the base model?
    merge_note: str = ""  # why not, when mergeable is False


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

    @classmethod
    def availability(cls, *, has_cuda: bool, has_bitsandbytes: bool) -> Availability:
        """Whether this method can run here; the reason is shown beside a disabled choice."""
        if cls.needs_cuda and not has_cuda:
            return Availability(False, f"{cls.info.title} needs an NVIDIA GPU with CUDA; none was found.")
        if cls.needs_bitsandbytes and not has_bitsandbytes:
            return Availability(
                False,
                f"{cls.info.title} needs the bitsandbytes package, which is not installed "
                "(pip install bitsandbytes).",
            )
        return Availability(True)
