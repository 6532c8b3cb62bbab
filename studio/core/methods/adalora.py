"""AdaLoRA: LoRA whose rank budget is re-allocated during training to the layers that matter most."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.methods.lora import lora_tensors
from studio.core.methods.targets import TargetModules, check_targets, clean_targets, missing_note, select_targets
from studio.core.models import ModelFacts


class AdaLoraMethod(MethodBase):
    name: Literal["adalora"] = "adalora"
    init_r: int = Field(12, ge=1, le=1024, title="Initial rank",
                        description="Rank every adapted layer starts with, before the budget is cut.")
    target_r: int = Field(8, ge=1, le=1024, title="Target rank",
                          description="Average rank per layer left at the end; important layers keep more, "
                                      "unimportant ones less.")
    alpha: float = Field(32.0, gt=0, le=4096, title="Alpha", description="Scale of the update, as in LoRA.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, title="Dropout", description="Dropout on the adapter's input.")
    target_modules: TargetModules = Field(
        "all-linear", title="Target modules",
        description="Which linear layers get adapters: 'all-linear' or a list of module names.")
    warmup_share: float = Field(
        0.1, ge=0.0, le=0.9, title="Budget warm-up share",
        description="Share of the run's steps trained at the initial rank before pruning starts (tinit).")
    final_share: float = Field(
        0.2, ge=0.0, le=0.9, title="Final fine-tune share",
        description="Share of steps at the end trained with the final allocation fixed (tfinal).")
    update_every: int = Field(10, ge=1, le=10_000, title="Re-allocate every",
                              description="Steps between budget re-allocations (deltaT).")
    beta1: float = Field(0.85, ge=0.0, lt=1.0, title="Importance smoothing",
                         description="EMA factor for the sensitivity of each singular value.")
    beta2: float = Field(0.85, ge=0.0, lt=1.0, title="Uncertainty smoothing",
                         description="EMA factor for the uncertainty of that sensitivity.")
    orth_reg_weight: float = Field(0.5, ge=0.0, le=10.0, title="Orthogonality weight",
                                   description="Weight of the penalty that keeps P and Q orthogonal "
                                               "(added to the loss when the model computes it).")

    info = MethodInfo(
        title="AdaLoRA",
        summary="LoRA in SVD form (P x diag(E) x Q) that prunes the least important singular values during "
                "training, moving rank to the layers that need it.",
        when_to_pick="When you are unsure which layers need capacity and have enough steps (hundreds or more) "
                     "for the budget schedule to act.",
        costs="A little slower than LoRA (importance scores each step); starts with Initial rank's memory. "
              "The schedule is derived from the run's total steps: warm-up, pruning, final fine-tune.",
        mergeable=True,
        merge_note="The pruned SVD update merges into the weights like LoRA's.",
    )
    vram_family = "lora"

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: TargetModules) -> TargetModules:
        return clean_targets(v)

    @model_validator(mode="after")
    def _budget(self) -> "AdaLoraMethod":
        if self.target_r > self.init_r:
            raise ValueError("target_r: the target rank cannot exceed the initial rank")
        if self.warmup_share + self.final_share >= 0.95:
            raise ValueError("final_share: warm-up and final shares must leave at least 5% of the steps for pruning")
        return self

    def schedule(self, total_steps: int) -> dict[str, int]:
        """tinit/tfinal/total_step for a run of ``total_steps``, leaving at least one pruning step."""
        total = max(int(total_steps), 3)
        tinit = int(round(total * self.warmup_share))
        tfinal = int(round(total * self.final_share))
        while total - tinit - tfinal < 1 and (tinit or tfinal):
            if tinit >= tfinal:
                tinit -= 1
            else:
                tfinal -= 1
        return {"tinit": tinit, "tfinal": tfinal, "total_step": total,
                "deltaT": max(1, min(self.update_every, total - tinit - tfinal))}

    def problems(self, facts: ModelFacts) -> list[str]:
        return check_targets(self.target_modules, facts)

    def trainable_params(self, facts: ModelFacts) -> int:
        targets, _ = select_targets(self.target_modules, facts.linear_shapes)
        return facts.num_layers * sum(s.count * self.init_r * (s.in_features + s.out_features + 1) for s in targets)

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # P, Q and the singular values at Initial rank; the RankAllocator keeps an fp32 EMA of each
        # parameter's importance and of its uncertainty (8 bytes per trainable parameter).
        targets, missing = select_targets(self.target_modules, facts.linear_shapes)
        return VramTerms(self.vram_family, lora_tensors(targets, self.init_r, facts.num_layers, rank_vector=True),
                         targets=targets, rank=self.init_r, dropout=self.dropout, extra_state_bytes=8,
                         notes=missing_note(missing, facts))
