"""IA3: learned per-channel scaling vectors on keys, values and the MLP's input: the fewest parameters."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, field_validator

from studio.core.methods.base import MethodBase, MethodInfo
from studio.core.methods.lora import check_targets, clean_targets

# PEFT's defaults for Llama-style models; other layouts fall back to PEFT's own mapping.
DEFAULT_TARGETS = ("k_proj", "v_proj", "down_proj")
DEFAULT_FEEDFORWARD = ("down_proj",)


class IA3Method(MethodBase):
    name: Literal["ia3"] = "ia3"
    target_modules: Union[Literal["auto"], list[str]] = Field(
        "auto", title="Target modules",
        description="Layers whose activations get a learned scale. 'auto' uses PEFT's choice for the "
                    "architecture (keys, values and the MLP's down projection on Llama-style models).")
    feedforward_modules: list[str] = Field(
        list(DEFAULT_FEEDFORWARD), title="Feed-forward modules",
        description="Which of the targets are feed-forward layers: their INPUT is scaled instead of their output. "
                    "Only used when Target modules is a list.")

    info = MethodInfo(
        title="IA3",
        summary="Learns one scaling vector per targeted layer that rescales its activations; the base stays frozen.",
        when_to_pick="When the adapter must be tiny (kilobytes) or many adapters are served at once; "
                     "learns less than LoRA, so it suits light behaviour or format changes.",
        costs="Negligible memory and speed overhead; usually needs a 10x higher learning rate than LoRA.",
        mergeable=True,
        merge_note="The scales multiply into the weights, so the merged model is exactly a base-sized model.",
        family="Tiny adapters",
    )
    recommended_lr = 3e-3

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: Any) -> Any:
        return clean_targets(v, keyword="auto")

    def feedforward_targets(self) -> list[str]:
        if self.target_modules == "auto":
            return list(DEFAULT_FEEDFORWARD)
        return [m for m in self.feedforward_modules if m in self.target_modules]

    def problems(self, facts: Any) -> list[str]:
        if self.target_modules == "auto":
            return []
        return check_targets(self.target_modules, facts)
