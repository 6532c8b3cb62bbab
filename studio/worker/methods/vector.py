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
    def peft_config(self) -> Any:
        from peft import WaveFTConfig

        m = self.method
        return WaveFTConfig(n_frequency=m.n_frequency, scaling=m.scaling, wavelet_family=m.wavelet_family,
                            target_modules=m.target_modules, task_type="CAUSAL_LM")
