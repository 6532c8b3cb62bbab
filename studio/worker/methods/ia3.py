"""IA3 through PEFT: learned scaling vectors on chosen activations."""

from __future__ import annotations

from typing import Any

from studio.worker.methods import register
from studio.worker.methods.peft_base import PeftRuntime


@register("ia3")
class IA3Runtime(PeftRuntime):
    def peft_config(self) -> Any:
        from peft import IA3Config

        m = self.method
        if m.target_modules == "auto":
            # None lets PEFT pick its per-architecture defaults (k/v/down on Llama-style models).
            return IA3Config(task_type="CAUSAL_LM")
        return IA3Config(target_modules=m.target_modules, feedforward_modules=m.feedforward_targets(),
                         task_type="CAUSAL_LM")
