"""GaLore: full-parameter training with AdamW run in a low-rank projection of each matrix's gradient.

The ``galore-torch`` package is not used: it imports bitsandbytes unconditionally (no CPU or
macOS install) and pins nothing for torch 2.13. The optimizer below follows the paper's
Algorithm 1: every ``update_proj_gap`` steps a matrix's projector is recomputed from the SVD of
its current gradient (top-``rank`` singular vectors, on the shorter side); in between, gradients
are projected, AdamW's moments live in the small space, and the normalised update is projected
back and scaled by ``scale``. Vectors (norms, biases) and the embeddings/head use plain AdamW.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from studio.worker.methods import register
from studio.worker.methods.base import MethodRuntime
from studio.worker.methods.layers import split_model


def make_projector(grad: torch.Tensor, rank: int) -> tuple[torch.Tensor, str]:
    """Orthonormal basis of the gradient's top singular subspace, on its shorter side."""
    m, n = grad.shape
    rank = min(rank, m, n)
    u, _s, vh = torch.linalg.svd(grad.float(), full_matrices=False)
    if m >= n:
        return vh[:rank].contiguous(), "right"  # r x n: low = g @ P.T
    return u[:, :rank].contiguous(), "left"  # m x r: low = P.T @ g


def project(grad: torch.Tensor, proj: torch.Tensor, side: str) -> torch.Tensor:
    g = grad.float()
    return g @ proj.T if side == "right" else proj.T @ g


def project_back(low: torch.Tensor, proj: torch.Tensor, side: str) -> torch.Tensor:
    return low @ proj if side == "right" else proj @ low


class GaLoreAdamW(torch.optim.Optimizer):
    """AdamW; parameter groups with a ``rank`` are optimised in GaLore's projected space."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=None,
                        update_proj_gap=200, scale=0.25)
        super().__init__(params, defaults)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        # torch's loader turns string state values into generators; a projector's side follows
        # from its matrix's shape (make_projector), so it is set again (resuming a run).
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state.get(p)
                if state and "proj" in state:
                    state["side"] = "right" if p.shape[0] >= p.shape[1] else "left"

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                step = state.get("step", 0)
                grad = p.grad
                low_rank = bool(group["rank"]) and grad.ndim == 2
                if low_rank:
                    if "proj" not in state or step % group["update_proj_gap"] == 0:
                        state["proj"], state["side"] = make_projector(grad, group["rank"])
                    grad = project(grad, state["proj"], state["side"])
                else:
                    grad = grad.float()
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(grad, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(grad, dtype=torch.float32)
                step += 1
                state["step"] = step
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                update = exp_avg / (exp_avg_sq.sqrt() + group["eps"])
                if low_rank:
                    update = project_back(update, state["proj"], state["side"]) * group["scale"]
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.to(p.dtype), alpha=-step_size)
        return loss


@register("galore")
class GaloreRuntime(MethodRuntime):
    def wrap(self, model: Any) -> Any:
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def param_groups(self, model: Any) -> list[dict[str, Any]]:
        m, t = self.method, self.cfg.training
        parts = split_model(model)
        matrices = [p for layer in parts.layers for _, p in layer if p.ndim == 2]
        ids = {id(p) for p in matrices}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": matrices, "rank": m.rank, "update_proj_gap": m.update_interval, "scale": m.scale,
                   "weight_decay": t.weight_decay},
                  {"params": others, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def make_optimizer(self, model: Any) -> Any:
        # The 8-bit optimizer choice does not apply: GaLore's states are already small.
        return GaLoreAdamW(self.param_groups(model), lr=self.cfg.training.learning_rate)
