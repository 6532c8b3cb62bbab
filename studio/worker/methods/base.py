"""MethodRuntime: the hooks a method implements; defaults suit full-parameter training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from studio.core.config import RunConfig


class MethodRuntime:
    # Whether the method trains the model's own weights (full, freeze, LISA, GaLore) rather than
    # added adapter tensors: fp16 runs then need the model in fp32 (see studio/worker/train.py).
    trains_base_weights = True
    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.method = cfg.method

    def quantization_config(self, compute_dtype: Any) -> Optional[Any]:
        return None

    def wrap(self, model: Any) -> Any:
        return model

    def trainable_parameters(self, model: Any) -> list[Any]:
        return [p for p in model.parameters() if p.requires_grad]

    def param_groups(self, model: Any) -> list[dict[str, Any]]:
        t = self.cfg.training
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
        groups = [{"params": decay, "weight_decay": t.weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return [g for g in groups if g["params"]]

    def make_optimizer(self, model: Any) -> Any:
        import torch

        t = self.cfg.training
        groups = self.param_groups(model)
        if t.optimizer in ("adamw_8bit", "paged_adamw_8bit"):
            import bitsandbytes as bnb

            cls = bnb.optim.PagedAdamW8bit if t.optimizer == "paged_adamw_8bit" else bnb.optim.AdamW8bit
            return cls(groups, lr=t.learning_rate)
        if t.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=t.learning_rate, momentum=0.9)
        fused = all(p.is_cuda for g in groups for p in g["params"])
        return torch.optim.AdamW(groups, lr=t.learning_rate, betas=(0.9, 0.999), fused=fused or None)

    def on_step_end(self, model: Any, step: int, total_steps: int) -> None:
        return None

    def penalty(self, model: Any) -> Optional[Any]:
        """A regulariser the method adds to each optimizer step's objective (a scalar tensor), or None.

        It is backpropagated with the step's gradients but not reported: the loss curve stays the
        cross-entropy, comparable with the validation loss and with other methods."""
        return None

    def save(self, model: Any, out_dir: Path) -> None:
        model.save_pretrained(out_dir, safe_serialization=True)

    # ---- hooks added for export, reload and prompt methods (defaults keep the loop unchanged) ----
    def logits_offset(self) -> int:
        """Positions the method prepends to the logits (soft prompts); the loss drops them."""
        return 0

    def load_trained(self, model: Any, trained_dir: Path) -> Any:
        """Put the weights ``save`` wrote onto a freshly loaded base model (reload, export, generation).

        Full-parameter methods save model tensors; they are loaded over the base's by name, so a
        folder holding only some layers (freeze-tuning) works too.
        """
        from studio.worker.methods.weights import load_tensors_into

        load_tensors_into(model, Path(trained_dir))
        return model

    # ---- resuming a run (studio/worker/resume.py) -------------------------------------------
    def load_for_resume(self, model: Any, checkpoint_dir: Path) -> None:
        """Put the weights ``save`` wrote back INTO the model being trained (same wrapping, in place).

        The default reads the tensors by parameter name (full, freeze, LISA and GaLore save
        parameters under their model names); PEFT methods override it.
        """
        from studio.worker.methods.weights import load_tensors_into

        load_tensors_into(model, Path(checkpoint_dir))

    def resume_state(self, model: Any) -> dict[str, Any]:
        """Method state outside the weights and the optimizer that a resumed run needs (picklable)."""
        return {}

    def load_resume_state(self, model: Any, state: dict[str, Any]) -> None:
        """Put back what ``resume_state`` returned (called after ``load_for_resume``)."""
        return None

    def merge(self, model: Any) -> Any:
        """The trained model as a plain transformers model with the training folded into its weights."""
        unload = getattr(model, "merge_and_unload", None)
        return unload() if callable(unload) else model


def trainable_tensors(model: Any) -> dict[str, Any]:
    """Copies of the parameters being trained, by name (for methods whose saved format is not the live one)."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_tensors(model: Any, tensors: dict[str, Any]) -> None:
    """Put ``trainable_tensors`` back in place; a name this model lacks means a different setup."""
    import torch

    params = dict(model.named_parameters())
    missing = [n for n in tensors if n not in params]
    if missing:
        raise ValueError(f"{len(missing)} saved tensors do not belong to this model (first: {missing[0]})")
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(device=params[name].device, dtype=params[name].dtype))
