"""Soft-prompt methods through PEFT: prompt tuning, P-tuning, prefix tuning, LLaMA-Adapter."""

from __future__ import annotations

from typing import Any

from studio.worker.methods import register
from studio.worker.methods.peft_base import PromptRuntime


@register("prompt_tuning")
class PromptTuningRuntime(PromptRuntime):
    def peft_config(self) -> Any:
        from peft import PromptTuningConfig, PromptTuningInit

        m = self.method
        kwargs: dict[str, Any] = {}
        if m.init == "text":
            from studio.worker.modeling import model_location

            kwargs = dict(prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=m.init_text,
                          tokenizer_name_or_path=model_location(self.cfg))
        return PromptTuningConfig(num_virtual_tokens=m.num_virtual_tokens, task_type="CAUSAL_LM", **kwargs)

    def logits_offset(self) -> int:
        return self.method.num_virtual_tokens


@register("p_tuning")
class PTuningRuntime(PromptRuntime):
    def peft_config(self) -> Any:
        from peft import PromptEncoderConfig

        m = self.method
        return PromptEncoderConfig(num_virtual_tokens=m.num_virtual_tokens, encoder_reparameterization_type=m.encoder_type,
                                   encoder_hidden_size=m.encoder_hidden_size, task_type="CAUSAL_LM")

    def logits_offset(self) -> int:
        return self.method.num_virtual_tokens


@register("prefix_tuning")
class PrefixTuningRuntime(PromptRuntime):
    def peft_config(self) -> Any:
        from peft import PrefixTuningConfig

        m = self.method
        return PrefixTuningConfig(num_virtual_tokens=m.num_virtual_tokens, prefix_projection=m.prefix_projection,
                                  encoder_hidden_size=m.encoder_hidden_size, task_type="CAUSAL_LM")


@register("llama_adapter")
class LlamaAdapterRuntime(PromptRuntime):
    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.layers = cfg.method.adapter_layers

    def peft_config(self) -> Any:
        from peft import AdaptionPromptConfig

        return AdaptionPromptConfig(adapter_len=self.method.adapter_len, adapter_layers=self.layers,
                                    task_type="CAUSAL_LM")

    def wrap(self, model: Any) -> Any:
        # "The top N layers" means all of them on a model with fewer.
        total = getattr(model.config, "num_hidden_layers", None)
        self.layers = min(self.method.adapter_layers, total) if total else self.method.adapter_layers
        return super().wrap(model)
