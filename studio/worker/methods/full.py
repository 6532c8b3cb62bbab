"""Full fine-tuning, freeze-tuning (last N layers) and LISA (randomly re-sampled active layers)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from studio.worker.methods import register
from studio.worker.methods.base import MethodRuntime
from studio.worker.methods.layers import split_model
from studio.worker.methods.weights import save_tensors


@register("full")
class FullRuntime(MethodRuntime):
    def wrap(self, model: Any) -> Any:
        for p in model.parameters():
            p.requires_grad_(True)
        return model


@register("freeze")
class FreezeRuntime(MethodRuntime):
    def wrap(self, model: Any) -> Any:
        parts = split_model(model)
        m = self.method
        for p in model.parameters():
            p.requires_grad_(False)
        chosen = [p for layer in parts.layers[-m.trainable_layers:] for _, p in layer] + [p for _, p in parts.rest]
        if m.train_embeddings:
            chosen += [p for _, p in parts.embeddings]
        if m.train_head:
            # A tied head IS the embedding matrix; training the head then trains the embeddings too.
            chosen += [p for _, p in parts.head] or [p for _, p in parts.embeddings]
        for p in chosen:
            p.requires_grad_(True)
        return model

    def save(self, model: Any, out_dir: Path) -> None:
        # Only the trained layers: a fraction of the model; export puts them into the base.
        save_tensors(model, out_dir)


@register("lisa")
class LisaRuntime(MethodRuntime):
    """Embeddings, head and final norm always train; ``active_layers`` decoder layers at a time."""

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.rng = random.Random(cfg.training.seed)
        self.active: list[int] = []
        self.optimizer: Any = None
        self.parts: Any = None

    def wrap(self, model: Any) -> Any:
        self.parts = split_model(model)
        for p in model.parameters():
            p.requires_grad_(False)
        for _, p in self.parts.embeddings + self.parts.head + self.parts.rest:
            p.requires_grad_(True)
        self.resample()
        return model

    def resample(self) -> list[int]:
        n = len(self.parts.layers)
        k = min(self.method.active_layers, n)
        new = sorted(self.rng.sample(range(n), k))
        for index in set(self.active) - set(new):
            for _, p in self.parts.layers[index]:
                p.requires_grad_(False)
                p.grad = None
                if self.optimizer is not None:
                    # A switched-off layer's AdamW state would only hold memory; LISA starts it fresh.
                    self.optimizer.state.pop(p, None)
        for index in new:
            for _, p in self.parts.layers[index]:
                p.requires_grad_(True)
        self.active = new
        return new

    def param_groups(self, model: Any) -> list[dict[str, Any]]:
        # Every parameter LISA may ever train goes into the optimizer now; frozen ones get no
        # gradient and AdamW skips them until their layer is drawn.
        t = self.cfg.training
        named = [np for layer in self.parts.layers for np in layer] + self.parts.embeddings + self.parts.head + self.parts.rest
        decay = [p for n, p in named if p.ndim >= 2 and "norm" not in n.lower()]
        no_decay = [p for n, p in named if not (p.ndim >= 2 and "norm" not in n.lower())]
        return [g for g in ({"params": decay, "weight_decay": t.weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}) if g["params"]]

    def make_optimizer(self, model: Any) -> Any:
        self.optimizer = super().make_optimizer(model)
        return self.optimizer

    def on_step_end(self, model: Any, step: int, total_steps: int) -> None:
        if step % self.method.interval == 0 and step < total_steps:
            self.resample()

    def resume_state(self, model: Any) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "active": list(self.active)}

    def load_resume_state(self, model: Any, state: dict[str, Any]) -> None:
        """The sampler continues its sequence and the layers active at the checkpoint train again."""
        self.rng.setstate(state["rng"])
        for index in self.active:
            for _, p in self.parts.layers[index]:
                p.requires_grad_(False)
        self.active = [int(i) for i in state["active"]]
        for index in self.active:
            for _, p in self.parts.layers[index]:
                p.requires_grad_(True)
