"""VB-LoRA and WaveFT: adapters with far fewer parameters than LoRA at similar expressiveness."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from studio.core.methods.base import MethodBase, MethodInfo, VramTerms
from studio.core.methods.targets import TargetModules, check_targets, clean_targets, missing_note, select_targets
from studio.core.models import LinearShape, ModelFacts


def _target_shapes(targets: TargetModules, facts: ModelFacts) -> tuple[LinearShape, ...]:
    return select_targets(targets, facts.linear_shapes)[0]


class VbLoraMethod(MethodBase):
    name: Literal["vblora"] = "vblora"
    r: int = Field(4, ge=1, le=256, title="Rank", description="Rank of each low-rank update.")
    num_vectors: int = Field(256, ge=2, le=65536, title="Vector bank size",
                             description="Number of shared vectors every adapter is composed from.")
    vector_length: int = Field(128, ge=1, le=65536, title="Vector length",
                               description="Length of each bank vector; must divide every targeted layer's "
                                           "input and output width. Longer means fewer trainable logits (the "
                                           "paper used 256 on Llama 2); 128 divides most models' widths.")
    topk: int = Field(2, ge=1, le=64, title="Top-k",
                      description="Bank vectors mixed into each sub-vector (2 in the paper).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, title="Dropout", description="Dropout on the adapter's input.")
    target_modules: TargetModules = Field("all-linear", title="Target modules",
                                          description="'all-linear' or a list of module names.")

    info = MethodInfo(
        title="VB-LoRA",
        summary="Every LoRA matrix is assembled from one small shared bank of vectors (top-k mixtures), so "
                "the whole adapter stores a bank plus selection logits.",
        when_to_pick="When adapter size matters most (many adapters, storage or transfer limits): a fraction "
                     "of LoRA's parameters at similar quality in the paper's experiments.",
        costs="Slower steps than LoRA (the matrices are rebuilt from the bank every forward); the bank "
              "needs its own learning rate in the paper, the studio uses one rate for all.",
        mergeable=True,
        merge_note="The assembled low-rank update merges like LoRA's.",
        family="Tiny adapters",
    )
    recommended_lr = 2e-3
    vram_family = "lora"  # low-rank matrices beside each target, rebuilt from the bank every forward

    _targets = field_validator("target_modules")(classmethod(lambda cls, v: clean_targets(v)))

    @model_validator(mode="after")
    def _topk_fits(self) -> "VbLoraMethod":
        if self.topk > self.num_vectors:
            raise ValueError("topk: cannot mix more vectors than the bank holds")
        return self

    def fitted(self, facts: ModelFacts) -> "VbLoraMethod":
        shapes = _target_shapes(self.target_modules, facts)
        fits = [v for v in range(self.vector_length, 0, -1)
                if all(s.in_features % v == 0 and s.out_features % v == 0 for s in shapes)]
        if not shapes or not fits or fits[0] == self.vector_length:
            return self
        return self.model_copy(update={"vector_length": fits[0]})

    def problems(self, facts: ModelFacts) -> list[str]:
        out = check_targets(self.target_modules, facts)
        shapes = _target_shapes(self.target_modules, facts)
        bad = sorted({s.name for s in shapes if s.in_features % self.vector_length or s.out_features % self.vector_length})
        if bad:
            fits = [v for v in (256, 128, 64, 32, 16, 8) if all(s.in_features % v == 0 and s.out_features % v == 0
                                                               for s in shapes)]
            hint = f"{fits[0]} fits this model" if fits else "choose a divisor of the model's layer widths"
            out.append(f"vector_length: {self.vector_length} does not divide the widths of {', '.join(bad)}; {hint}")
        return out

    def trainable_params(self, facts: ModelFacts) -> int:
        per_layer = sum(s.count * self.r * self.num_vectors
                        * (s.in_features // self.vector_length + s.out_features // self.vector_length)
                        for s in _target_shapes(self.target_modules, facts))
        return self.num_vectors * self.vector_length + facts.num_layers * per_layer

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # Per target the top-k selection logits of A's and B's sub-vectors; then the shared bank.
        targets, missing = select_targets(self.target_modules, facts.linear_shapes)
        sub = max(1, self.vector_length)
        tensors = [(self.r * (m.in_features + m.out_features) // sub * self.num_vectors, m.count * facts.num_layers)
                   for m in targets]
        tensors.append((self.num_vectors * self.vector_length, 1))
        return VramTerms(self.vram_family, tuple(tensors), targets=targets, rank=self.r, dropout=self.dropout,
                         notes=missing_note(missing, facts))


class WaveFtMethod(MethodBase):
    name: Literal["waveft"] = "waveft"
    n_frequency: int = Field(2592, ge=1, le=10_000_000, title="Coefficients per layer",
                             description="Trainable wavelet coefficients in each adapted layer "
                                         "(2592 matches LoRA rank 1 on a 1296-wide layer); a layer with fewer "
                                         "weights gets one per weight.")
    scaling: float = Field(25.0, gt=0, le=10_000, title="Scaling",
                           description="Multiplier on the reconstructed update, like LoRA's alpha.")
    wavelet_family: Literal["db1", "db2", "db3", "sym2", "sym3", "coif1"] = Field(
        "db1", title="Wavelet", description="Wavelet the update is expressed in; db1 (Haar) is the paper's default.")
    target_modules: TargetModules = Field("all-linear", title="Target modules",
                                          description="'all-linear' or a list of module names.")

    info = MethodInfo(
        title="WaveFT",
        summary="Learns a sparse set of wavelet coefficients per layer; the inverse wavelet transform turns "
                "them into a full-rank weight update.",
        when_to_pick="When you want fewer parameters than LoRA rank 1 with a full-rank update "
                     "(new in 2025; less tested than LoRA).",
        costs="An inverse wavelet transform per adapted layer each step: slower than LoRA.",
        mergeable=True,
        merge_note="The reconstructed update is a dense matrix that adds into the weight.",
        family="Tiny adapters",
    )
    recommended_lr = 1e-3
    vram_family = "waveft"

    _targets = field_validator("target_modules")(classmethod(lambda cls, v: clean_targets(v)))

    def problems(self, facts: ModelFacts) -> list[str]:
        # Layers with fewer weights than n_frequency get one coefficient per weight (the runtime caps them).
        return check_targets(self.target_modules, facts)

    def trainable_params(self, facts: ModelFacts) -> int:
        return facts.num_layers * sum(s.count * min(self.n_frequency, s.in_features * s.out_features)
                                      for s in _target_shapes(self.target_modules, facts))

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # Coefficients per target (uncapped: the estimate is on the safe side for small layers).
        targets, missing = select_targets(self.target_modules, facts.linear_shapes)
        return VramTerms(self.vram_family, tuple((self.n_frequency, m.count * facts.num_layers) for m in targets),
                         targets=targets, notes=missing_note(missing, facts))
