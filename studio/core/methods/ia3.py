"""IA3: learned per-channel scaling vectors on keys, values and the MLP's input: the fewest parameters."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, field_validator

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.methods.targets import check_targets, clean_targets, missing_note, select_targets, target_matches
from studio.core.models import LinearShape, ModelFacts

# The feed-forward default of the form (PEFT's for Llama-style models).
DEFAULT_FEEDFORWARD = ("down_proj",)

# 'auto' is PEFT's per-architecture default (peft.utils.constants, 0.21: Qwen and Gemma scale q and
# v, Llama and Mistral k and v; the feed-forward module comes last); for an architecture PEFT does
# not list (Phi-3's fused qkv_proj, ...) the worker (studio/worker/methods/ia3.py) takes the
# attention projection and the feed-forward output from the model's own layer names.
IA3_PEFT_DEFAULTS: dict[str, tuple[str, ...]] = {
    **{t: ("k_proj", "v_proj", "down_proj") for t in ("llama", "mistral")},
    **{t: ("q_proj", "v_proj", "down_proj") for t in ("llama4", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3")},
    "mixtral": ("k_proj", "v_proj", "w2"),
    "phi": ("q_proj", "v_proj", "fc2"),
}
ATTENTION_CANDIDATES = (("k_proj", "v_proj"), ("qkv_proj",), ("query_key_value",), ("c_attn",), ("Wqkv",))
FEEDFORWARD_CANDIDATES = ("down_proj", "fc2", "dense_4h_to_h", "w2", "c_proj")


def auto_targets(facts: ModelFacts) -> tuple[Union[str, list[str]], list[str]]:
    """(targets, feed-forward targets) that 'auto' scales on this model, as the worker chooses them."""
    known = IA3_PEFT_DEFAULTS.get(facts.model_type)
    if known:
        return list(known), [known[-1]]
    short = {n.rsplit(".", 1)[-1]: n for n in facts.linear_modules}
    attention = next((list(g) for g in ATTENTION_CANDIDATES if set(g) <= set(short)), [])
    ff = next(([n] for n in FEEDFORWARD_CANDIDATES if n in short), [])
    targets = [short[n] for n in attention + ff]
    return (targets, [short[n] for n in ff]) if targets else ("all-linear", [])


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
    vram_family = "ia3"

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: Any) -> Any:
        return clean_targets(v, keyword="auto")

    def feedforward_targets(self) -> list[str]:
        if self.target_modules == "auto":
            return list(DEFAULT_FEEDFORWARD)
        return [m for m in self.feedforward_modules if m in self.target_modules]

    def problems(self, facts: ModelFacts) -> list[str]:
        if self.target_modules == "auto":
            return []
        return check_targets(self.target_modules, facts)

    def scaled(self, facts: ModelFacts) -> tuple[tuple[LinearShape, ...], tuple[str, ...], list[str]]:
        """(the modules scaled, those scaled at their input, targets this model does not have)."""
        if self.target_modules == "auto":
            spec, feedforward = auto_targets(facts)
        else:
            spec, feedforward = self.target_modules, self.feedforward_targets()
        targets, missing = select_targets(spec, facts.linear_shapes)
        ff = tuple(s.name for s in targets if any(target_matches(f, s.name) for f in feedforward))
        return targets, ff, missing

    def _tensors(self, targets: tuple[LinearShape, ...], ff: tuple[str, ...],
                 layers: int) -> tuple[tuple[int, int], ...]:
        return tuple((s.in_features if s.name in ff else s.out_features, s.count * layers) for s in targets)

    def trainable_params(self, facts: ModelFacts) -> int:
        targets, ff, _ = self.scaled(facts)
        return sum(n * c for n, c in self._tensors(targets, ff, facts.num_layers))

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        targets, ff, missing = self.scaled(facts)
        return VramTerms(self.vram_family, self._tensors(targets, ff, facts.num_layers), targets=targets, ia3_ff=ff,
                         notes=missing_note(missing, facts))
