"""PeftRuntime: what every PEFT-based method shares (wrap, reload, merge, dequantized merge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.worker.methods.base import MethodRuntime


class PeftRuntime(MethodRuntime):
    """Subclasses implement ``peft_config()``; the rest is PEFT's standard adapter life cycle."""

    def peft_config(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def wrap(self, model: Any) -> Any:
        from peft import get_peft_model

        # No prepare_model_for_kbit_training: it upcasts every non-quantized parameter to fp32,
        # costing ~40% speed and GBs of memory (shared/research/measured-baseline-h100.md).
        return get_peft_model(model, self.peft_config())

    def load_trained(self, model: Any, trained_dir: Path) -> Any:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(trained_dir), is_trainable=False)

    def merge(self, model: Any) -> Any:
        from studio.worker.methods.quant import dequantize_bnb_layers

        # A quantized base cannot hold an exact merge; fold into a dequantized copy instead.
        dequantize_bnb_layers(model)
        return model.merge_and_unload()


class PromptRuntime(PeftRuntime):
    """Soft-prompt methods: nothing to merge (MethodInfo.merge_note says why)."""

    def merge(self, model: Any) -> Any:
        raise ValueError(f"{self.method.info.title} cannot be merged: {self.method.info.merge_note}")
