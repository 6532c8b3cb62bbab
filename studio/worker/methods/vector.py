"""VB-LoRA and WaveFT through PEFT."""

from __future__ import annotations

from typing import Any

from studio.worker.methods import register
from studio.worker.methods.peft_base import PeftRuntime


@register("vblora")
class VbLoraRuntime(PeftRuntime):
    def peft_config(self) -> Any:
        from peft import VBLoRAConfig

        m = self.method
        return VBLoRAConfig(r=m.r, num_vectors=m.num_vectors, vector_length=m.vector_length, topk=m.topk,
                            vblora_dropout=m.dropout, target_modules=m.target_modules, task_type="CAUSAL_LM")


@register("waveft")
class WaveFtRuntime(PeftRuntime):
    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.caps: dict[str, int] = {}

    def peft_config(self) -> Any:
        from peft import WaveFTConfig

        m = self.method
        return WaveFTConfig(n_frequency=m.n_frequency, scaling=m.scaling, wavelet_family=m.wavelet_family,
                            target_modules=m.target_modules, n_frequency_pattern=dict(self.caps),
                            task_type="CAUSAL_LM")

    def wrap(self, model: Any) -> Any:
        import re

        import torch

        # PEFT refuses n_frequency above a layer's weight count (small k/v projections on small
        # models); such layers get one coefficient per weight instead.
        n = self.method.n_frequency
        self.caps = {re.escape(name): mod.in_features * mod.out_features
                     for name, mod in model.named_modules()
                     if isinstance(mod, torch.nn.Linear) and mod.in_features * mod.out_features < n}
        return super().wrap(model)
