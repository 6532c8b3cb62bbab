"""IA3 through PEFT: learned scaling vectors on chosen activations."""

from __future__ import annotations

from typing import Any, Optional

from studio.core.methods.ia3 import ATTENTION_CANDIDATES, FEEDFORWARD_CANDIDATES
from studio.worker.methods import register
from studio.worker.methods.peft_base import PeftRuntime

# When PEFT has no IA3 defaults for an architecture (e.g. Phi-3's fused qkv_proj), scale the
# key/value (or fused attention) projection and the feed-forward output, as PEFT does for Llama
# (the candidates live in core, where the estimator makes the same choice from the model's config).


@register("ia3")
class IA3Runtime(PeftRuntime):
    def __init__(self, cfg):
        super().__init__(cfg)
        self._auto_targets: Optional[tuple[list[str], list[str]]] = None

    def wrap(self, model: Any) -> Any:
        if self.method.target_modules == "auto":
            from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as known

            if getattr(model.config, "model_type", None) not in known:
                self._auto_targets = auto_targets(model)
        return super().wrap(model)

    def peft_config(self) -> Any:
        from peft import IA3Config

        m = self.method
        if m.target_modules == "auto":
            if self._auto_targets:
                targets, feedforward = self._auto_targets
                return IA3Config(target_modules=targets, feedforward_modules=feedforward, task_type="CAUSAL_LM")
            # None lets PEFT pick its per-architecture defaults (k/v/down on Llama-style models).
            return IA3Config(task_type="CAUSAL_LM")
        return IA3Config(target_modules=m.target_modules, feedforward_modules=m.feedforward_targets(),
                         task_type="CAUSAL_LM")


def auto_targets(model: Any) -> tuple[list[str], list[str]]:
    """IA3 targets from the model's own linear layer names; ValueError naming them if none fit."""
    import torch

    names = {n.rsplit(".", 1)[-1] for n, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
    attention = next((list(group) for group in ATTENTION_CANDIDATES if set(group) <= names), [])
    feedforward = [next((n for n in FEEDFORWARD_CANDIDATES if n in names), "")]
    feedforward = [f for f in feedforward if f]
    if not attention and not feedforward:
        raise ValueError("IA3 found no known attention or feed-forward layers in this model; choose target modules "
                         "by hand (its linear layers: " + ", ".join(sorted(names)) + ")")
    return attention + feedforward, feedforward
