"""PeftRuntime: what every PEFT-based method shares (wrap, reload, merge, dequantized merge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.worker.methods.base import MethodRuntime, load_trainable_tensors, trainable_tensors


class PeftRuntime(MethodRuntime):
    """Subclasses implement ``peft_config()``; the rest is PEFT's standard adapter life cycle."""

    trains_base_weights = False  # PEFT adds its own (fp32) tensors and freezes the base

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

    def load_for_resume(self, model: Any, checkpoint_dir: Path) -> None:
        """The saved adapter tensors back into the adapter being trained (same modules, in place)."""
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        weights = load_peft_weights(str(checkpoint_dir), device=str(next(model.parameters()).device))
        result = set_peft_model_state_dict(model, weights, adapter_name=model.active_adapter)
        unexpected = list(getattr(result, "unexpected_keys", None) or [])
        if unexpected:
            raise ValueError(f"{checkpoint_dir}: {len(unexpected)} saved adapter tensors do not fit this model "
                             f"(first: {unexpected[0]}); the checkpoint belongs to a different adapter setup.")

    def merge(self, model: Any) -> Any:
        from studio.worker.methods.quant import has_bnb_layers

        if has_bnb_layers(model):
            # PEFT would merge into the 4/8-bit weights and re-quantize (lossy, still quantized);
            # the studio promises a bf16 model, so rebuild the adapter on a dequantized base first.
            model = rebuild_on_dequantized_base(model)
        return model.merge_and_unload()


def rebuild_on_dequantized_base(model: Any) -> Any:
    """The same adapter (config and trained tensors) on the base with its bnb layers dequantized."""
    import copy

    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    from studio.worker.methods.quant import dequantize_bnb_layers

    name = model.active_adapter
    config = copy.deepcopy(model.peft_config[name])
    state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model, adapter_name=name).items()}
    base = model.unload()  # the base without adapter wrappers, its bnb layers intact
    dequantize_bnb_layers(base)
    config.inference_mode = True
    rebuilt = get_peft_model(base, config, adapter_name=name)
    set_peft_model_state_dict(rebuilt, state, adapter_name=name)
    return rebuilt


class PromptRuntime(PeftRuntime):
    """Soft-prompt methods: nothing to merge (MethodInfo.merge_note says why)."""

    # PEFT saves P-tuning's encoder *output* (not the encoder) and prompt embeddings under other
    # names than the live modules: a resumed run takes the exact live tensors from the trainer state.
    def load_for_resume(self, model: Any, checkpoint_dir: Path) -> None:
        return None

    def resume_state(self, model: Any) -> dict[str, Any]:
        return {"trainable": trainable_tensors(model)}

    def load_resume_state(self, model: Any, state: dict[str, Any]) -> None:
        load_trainable_tensors(model, state["trainable"])

    def merge(self, model: Any) -> Any:
        raise ValueError(f"{self.method.info.title} cannot be merged: {self.method.info.merge_note}")
