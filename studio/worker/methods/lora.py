"""The LoRA family through PEFT: LoRA, QLoRA, DoRA, QDoRA, LoRA+ and QR-Adaptor's per-layer plan.

One runtime covers them all: the config decides the base's quantization, DoRA, the init, the
rank/alpha patterns and (LoRA+) a separate learning rate for the B matrices.
"""

from __future__ import annotations

from typing import Any, Optional

from studio.worker.methods import register
from studio.worker.methods.peft_base import PeftRuntime
from studio.worker.methods.quant import bnb_config

_INIT = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora",
         # LoftQ starts from the standard init and is then fitted to the 4-bit base (see wrap).
         "loftq": True}


@register("lora", "qlora", "dora", "qdora", "loraplus")
class LoraRuntime(PeftRuntime):
    def quantization_config(self, compute_dtype: Any) -> Optional[Any]:
        m = self.method
        if not m.quantized_base():
            return None
        return bnb_config(m.bits, m.quant_type, m.double_quant, m.compute_dtype, self.skip_modules())

    def skip_modules(self) -> Optional[list[str]]:
        """Modules left unquantized; None = bitsandbytes' default (the output head)."""
        return None

    def layer_plan(self) -> tuple[dict[str, int], Optional[str]]:
        """Extra rank patterns and an exclude regex decided per layer (QR-Adaptor overrides)."""
        return {}, None

    def peft_config(self) -> Any:
        from peft import LoraConfig

        m = self.method
        ranks = dict(m.rank_map())
        extra_ranks, exclude = self.layer_plan()
        for key, value in extra_ranks.items():
            ranks.setdefault(key, value)  # the user's module patterns win over the layer plan
        return LoraConfig(
            r=m.r, lora_alpha=m.alpha, lora_dropout=m.dropout, target_modules=m.target_modules,
            use_rslora=m.use_rslora, bias="none", task_type="CAUSAL_LM",
            init_lora_weights=_INIT[m.init], use_dora=m.uses_dora,
            rank_pattern=ranks, alpha_pattern=m.alpha_map(), exclude_modules=exclude,
        )

    def wrap(self, model: Any) -> Any:
        peft_model = super().wrap(model)
        if self.method.init == "loftq":
            from peft import replace_lora_weights_loftq

            from studio.worker.modeling import model_location

            location = model_location(self.cfg) if self.cfg.model.source != "hub" else None
            replace_lora_weights_loftq(peft_model, model_path=location)
        return peft_model

    def param_groups(self, model: Any) -> list[dict[str, Any]]:
        groups = super().param_groups(model)
        ratio = getattr(self.method, "lr_ratio", None)
        if not ratio or ratio == 1:
            return groups
        # LoRA+: B matrices (lora_B, and DoRA has none extra) learn ratio x faster than A.
        lr = self.cfg.training.learning_rate
        names = {id(p): n for n, p in model.named_parameters()}
        out = []
        for g in groups:
            fast = [p for p in g["params"] if "lora_B" in names.get(id(p), "")]
            slow = [p for p in g["params"] if "lora_B" not in names.get(id(p), "")]
            if slow:
                out.append({**g, "params": slow, "lr": lr})
            if fast:
                out.append({**g, "params": fast, "lr": lr * ratio})
        return out
