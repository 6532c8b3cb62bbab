"""Methods that train the model's own weights: full fine-tuning, freeze-tuning, GaLore and LISA."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.models import ModelFacts

_FULL_MERGE = "The trained weights are the model: 'merged' export writes them as a normal model folder."


def layer_params(facts: ModelFacts) -> int:
    """Parameters of one decoder layer: everything but the embeddings, the head and the final norm."""
    heads = facts.embedding_params * (1 if facts.tie_word_embeddings else 2)
    return max(0, (facts.params_from_config - heads - facts.hidden_size) // max(1, facts.num_layers))


def model_tensors(facts: ModelFacts, layers: int,
                  embeddings: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """The trained tensors of ``layers`` decoder layers (each linear, experts included, and the
    layer's small tensors together), then ``embeddings`` (the input embedding and an untied head)
    and the final norm."""
    layer = [(m.in_features * m.out_features, m.count) for m in facts.linear_shapes + facts.expert_shapes]
    layer.append((layer_params(facts) - facts.layer_linear_params - facts.layer_expert_params, 1))
    return tuple((numel, count * layers) for numel, count in layer if numel) + embeddings + ((facts.hidden_size, 1),)


def _embeddings_and_head(facts: ModelFacts) -> tuple[tuple[int, int], ...]:
    return ((facts.embedding_params, 1 if facts.tie_word_embeddings else 2),)


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
    vram_family = "full"

    def trainable_params(self, facts: ModelFacts) -> int:
        return facts.num_params

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        return VramTerms(self.vram_family, model_tensors(facts, facts.num_layers, _embeddings_and_head(facts)))


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
    vram_family = "freeze"

    def problems(self, facts: ModelFacts) -> list[str]:
        layers = facts.num_layers
        if layers and self.trainable_layers > layers:
            return [f"trainable_layers: the model has {layers} layers; choose at most {layers}"]
        return []

    def _head_trains_apart(self, facts: ModelFacts) -> bool:
        """The head is a tensor of its own that trains (a tied head trains with the embeddings)."""
        return self.train_head and not (facts.tie_word_embeddings and self.train_embeddings)

    def trainable_params(self, facts: ModelFacts) -> int:
        n = min(self.trainable_layers, facts.num_layers) * layer_params(facts) + facts.hidden_size
        if self.train_embeddings:
            n += facts.embedding_params
        if self._head_trains_apart(facts):
            n += facts.embedding_params
        return n

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        layers = min(facts.num_layers, max(1, self.trainable_layers))
        extra = ((facts.embedding_params, 1),) * (int(self.train_embeddings) + int(self._head_trains_apart(facts)))
        return VramTerms(self.vram_family, model_tensors(facts, layers, extra), trainable_layers=self.trainable_layers,
                         train_embeddings=self.train_embeddings, train_head=self.train_head)


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
    vram_family = "galore"

    def trainable_params(self, facts: ModelFacts) -> int:
        return facts.num_params

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        return VramTerms(self.vram_family, model_tensors(facts, facts.num_layers, _embeddings_and_head(facts)),
                         galore_rank=self.rank)


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
    vram_family = "lisa"

    def problems(self, facts: ModelFacts) -> list[str]:
        layers = facts.num_layers
        if layers and self.active_layers > layers:
            return [f"active_layers: the model has {layers} layers; choose at most {layers}"]
        return []

    def trainable_params(self, facts: ModelFacts) -> int:
        return (min(self.active_layers, facts.num_layers) * layer_params(facts) + facts.hidden_size
                + facts.embedding_params * (1 if facts.tie_word_embeddings else 2))

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        layers = min(facts.num_layers, max(1, self.active_layers))
        return VramTerms(self.vram_family, model_tensors(facts, layers, _embeddings_and_head(facts)),
                         trainable_layers=self.active_layers)
