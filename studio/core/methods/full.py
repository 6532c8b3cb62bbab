"""Methods that train the model's own weights: full fine-tuning, freeze-tuning, GaLore and LISA."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from studio.core.methods.base import MethodBase, MethodInfo

_FULL_MERGE = "The trained weights are the model: 'merged' export writes them as a normal model folder."


class FullMethod(MethodBase):
    name: Literal["full"] = "full"

    info = MethodInfo(
        title="Full fine-tuning",
        summary="Trains every weight of the model.",
        when_to_pick="When adapters are not enough (new language, large domain shift) and the GPU has room: "
                     "roughly 16 bytes per parameter with AdamW in mixed precision.",
        costs="The most memory by far (weights, gradients and two AdamW states for all parameters); the "
              "output is a full model, not a small adapter. Wants a ~10x lower learning rate than LoRA.",
        mergeable=True, merge_note=_FULL_MERGE, family="Full-parameter",
    )
    recommended_lr = 1e-5


class FreezeMethod(MethodBase):
    name: Literal["freeze"] = "freeze"
    trainable_layers: int = Field(2, ge=1, le=1024, title="Trained layers",
                                  description="Train the last N decoder layers; all others stay frozen.")
    train_embeddings: bool = Field(False, title="Train embeddings",
                                   description="Also train the input embeddings (useful when new tokens matter).")
    train_head: bool = Field(False, title="Train output head",
                             description="Also train the output head (the final norm is always trained with "
                                         "the last layer).")

    info = MethodInfo(
        title="Freeze-tuning",
        summary="Trains only the last N decoder layers (and optionally embeddings/head); the rest is frozen.",
        when_to_pick="A simple middle ground between LoRA and full fine-tuning: full-rank updates where "
                     "task-specific features live, memory in proportion to N.",
        costs="Gradients and optimizer states for the trained layers only; backward stops at the first "
              "trained layer, so steps are faster than full fine-tuning.",
        mergeable=True,
        merge_note="Only the trained layers are saved; 'merged' export writes them into the base as a full model.",
        family="Full-parameter",
    )
    recommended_lr = 2e-5

    def problems(self, facts: Any) -> list[str]:
        layers = getattr(facts, "num_layers", 0) or 0
        if layers and self.trainable_layers > layers:
            return [f"trainable_layers: the model has {layers} layers; choose at most {layers}"]
        return []


class GaloreMethod(MethodBase):
    name: Literal["galore"] = "galore"
    rank: int = Field(128, ge=1, le=8192, title="Projection rank",
                      description="Rank of the subspace gradients are projected into; optimizer state is "
                                  "kept at this rank for every weight matrix.")
    update_interval: int = Field(200, ge=1, le=100_000, title="Subspace refresh",
                                 description="Recompute each matrix's projection (an SVD of its gradient) every N steps.")
    scale: float = Field(0.25, gt=0, le=10.0, title="Update scale",
                         description="Multiplier on the projected-back update (the paper's alpha; 0.25 for LLaMA).")

    info = MethodInfo(
        title="GaLore",
        summary="Full-parameter training whose optimizer works in a low-rank projection of each weight "
                "matrix's gradient, refreshed by SVD every few hundred steps.",
        when_to_pick="When full fine-tuning's quality is wanted but AdamW's states for every parameter do not fit.",
        costs="Weights and gradients stay full size (only the optimizer state shrinks); an SVD per matrix at "
              "each refresh makes those steps slow. Embeddings, norms and the head use plain AdamW.",
        mergeable=True, merge_note=_FULL_MERGE, family="Full-parameter",
    )
    recommended_lr = 1e-5


class LisaMethod(MethodBase):
    name: Literal["lisa"] = "lisa"
    active_layers: int = Field(2, ge=1, le=1024, title="Active layers",
                               description="Decoder layers trained at a time; the rest are frozen until re-sampled.")
    interval: int = Field(20, ge=1, le=100_000, title="Re-sample every",
                          description="Steps between drawing a new random set of active layers.")

    info = MethodInfo(
        title="LISA",
        summary="Layer-wise importance sampling: embeddings and head always train, plus a few randomly "
                "chosen decoder layers that change every few steps.",
        when_to_pick="Full-parameter quality at close to LoRA's memory on mid-sized models; every layer "
                     "gets trained over the run.",
        costs="Gradients and optimizer states for the active layers, embeddings and head only (states of "
              "layers that are switched off are dropped); embeddings and head dominate on big vocabularies.",
        mergeable=True, merge_note=_FULL_MERGE, family="Full-parameter",
    )
    recommended_lr = 2e-5

    def problems(self, facts: Any) -> list[str]:
        layers = getattr(facts, "num_layers", 0) or 0
        if layers and self.active_layers > layers:
            return [f"active_layers: the model has {layers} layers; choose at most {layers}"]
        return []
