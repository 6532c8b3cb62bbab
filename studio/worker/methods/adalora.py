"""AdaLoRA through PEFT, with the budget schedule derived from the run's total steps.

PEFT's ``update_and_allocate`` needs the step's gradients, but the training loop clears them
before it calls ``on_step_end``; so the allocation runs in an optimizer step post-hook (after the
update, gradients still present) and ``on_step_end`` keeps the schedule in line with the loop's
final step count.
"""

from __future__ import annotations

from typing import Any

from studio.worker.methods import register
from studio.worker.methods.base import load_trainable_tensors, trainable_tensors
from studio.worker.methods.peft_base import PeftRuntime


@register("adalora")
class AdaLoraRuntime(PeftRuntime):
    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.global_step = 0
        self._model: Any = None
        # The loop reports the true total in on_step_end; max_steps (or a placeholder) until then.
        self.total_steps = cfg.training.max_steps or 1000

    def peft_config(self) -> Any:
        from peft import AdaLoraConfig

        m = self.method
        return AdaLoraConfig(
            init_r=m.init_r, target_r=m.target_r, lora_alpha=m.alpha, lora_dropout=m.dropout,
            target_modules=m.target_modules, beta1=m.beta1, beta2=m.beta2, orth_reg_weight=m.orth_reg_weight,
            task_type="CAUSAL_LM", **m.schedule(self.total_steps),
        )

    def wrap(self, model: Any) -> Any:
        self._model = super().wrap(model)
        return self._model

    def set_total_steps(self, total_steps: int) -> None:
        """Re-derive tinit/tfinal/total_step; PEFT's allocator reads them from the config each step."""
        if total_steps == self.total_steps or self._model is None:
            return
        self.total_steps = total_steps
        config = self._model.peft_config["default"]
        for key, value in self.method.schedule(total_steps).items():
            setattr(config, key, value)

    def penalty(self, model: Any) -> Any:
        """AdaLoRA's orthogonality regulariser, as PEFT's own forward adds it when it computes the loss
        (the studio computes its loss itself): orth_reg_weight x the mean over P and Q matrices of
        ||P P^T - I||_F and ||Q^T Q - I||_F, keeping the SVD-style factors near-orthogonal so the
        importance scores that prune ranks stay meaningful."""
        import torch

        weight = self.method.orth_reg_weight
        if not weight:
            return None
        terms = []
        for name, p in model.named_parameters():
            if not p.requires_grad or p.numel() == 0 or not ("lora_A" in name or "lora_B" in name):
                continue
            cov = p @ p.T if "lora_A" in name else p.T @ p
            eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
            terms.append(torch.linalg.matrix_norm(cov - eye))
        if not terms:
            return None
        return weight * torch.stack(terms).mean()

    def make_optimizer(self, model: Any) -> Any:
        optimizer = super().make_optimizer(model)
        optimizer.register_step_post_hook(self._after_optimizer_step)
        return optimizer

    def _after_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.global_step += 1
        if self._model is not None:
            self._model.base_model.update_and_allocate(self.global_step)

    def on_step_end(self, model: Any, step: int, total_steps: int) -> None:
        self.set_total_steps(total_steps)

    # ---- resuming: PEFT saves AdaLoRA's pruned ranks resized, so the live tensors travel as they are
    def load_for_resume(self, model: Any, checkpoint_dir: Any) -> None:
        return None  # load_resume_state puts the exact trainable tensors back

    def resume_state(self, model: Any) -> dict[str, Any]:
        allocator = model.base_model.rankallocator
        config = model.peft_config["default"]
        clone = (lambda d: {k: v.detach().cpu().clone() for k, v in d.items()})  # noqa: E731
        return {"global_step": self.global_step, "rank_pattern": config.rank_pattern,
                "trainable": trainable_tensors(model),
                "allocator": {k: clone(getattr(allocator, k)) for k in ("ipt", "exp_avg_ipt", "exp_avg_unc")}}

    def load_resume_state(self, model: Any, state: dict[str, Any]) -> None:
        self.global_step = int(state["global_step"])
        model.peft_config["default"].rank_pattern = state.get("rank_pattern")
        load_trainable_tensors(model, state["trainable"])
        allocator = model.base_model.rankallocator
        device = next(model.parameters()).device
        for key, values in state["allocator"].items():
            setattr(allocator, key, {k: v.to(device) for k, v in values.items()})
