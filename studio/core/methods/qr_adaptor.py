"""QR-Adaptor-style allocation: a rank and a precision chosen per decoder layer.

What the paper (QR-Adaptor, 2025) does: it searches per-layer quantization bit-width and LoRA rank
jointly, scoring candidate allocations by the fine-tuned model's actual performance on a small
calibration set, with a multi-objective search that trades accuracy against memory.

What the studio does (and says so in the help): it does NOT run that search. You either edit the
table yourself, or the studio runs one cheap, data-free sensitivity pass when training starts: it
simulates 4-bit NF4 quantization of every layer's weights and measures the relative error. The
layers hurt most by quantization stay in bf16 (bitsandbytes' skip list), and the rank budget
(Rank x layers) is shared out in proportion to that error. bitsandbytes loads one quantized type
per model, so the per-layer choice is quantized-or-bf16, not 2/4/8 bits per layer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, field_validator

from studio.core.methods.base import MethodInfo, VramTerms
from studio.core.methods.lora import QLoraMethod, lora_params
from studio.core.methods.patterns import normalise, parse_layer_map, parse_layer_set
from studio.core.methods.targets import select_targets
from studio.core.models import ModelFacts


class QrAdaptorMethod(QLoraMethod):
    name: Literal["qr_adaptor"] = "qr_adaptor"  # type: ignore[assignment]
    allocation: Literal["table", "sensitivity"] = Field(
        "sensitivity", title="Allocation",
        description="Sensitivity: the studio measures each layer's 4-bit quantization error before training "
                    "and keeps the worst layers in bf16 with more rank. Table: use the two tables below as written.")
    bf16_layer_count: int = Field(2, ge=0, le=1024, title="bf16 layers (sensitivity)",
                                  description="How many layers the sensitivity pass keeps unquantized.")
    layer_ranks: str = Field(
        "", title="Rank per layer (table)",
        description="Per-layer ranks as layers=rank, e.g. '0-3=8, 4-19=16, 20-23=32'; 0 = no adapter on that "
                    "layer; unlisted layers use Rank.")
    bf16_layers: str = Field(
        "", title="bf16 layers (table)",
        description="Layers kept unquantized in bf16, e.g. '0, 1, 23' or '0-2'.")

    info = MethodInfo(
        title="QR-Adaptor (per-layer rank + precision)",
        summary="QLoRA with a rank and a precision (quantized or bf16) chosen per layer, from a table you edit "
                "or from a quick quantization-sensitivity pass.",
        when_to_pick="When QLoRA's uniform 4-bit hurts quality and a few layers in bf16 fit in memory. "
                     "The paper searches bit-widths and ranks per layer against downstream accuracy; the studio "
                     "does not run that search: it uses your table, or keeps the layers with the largest 4-bit "
                     "weight error in bf16 and gives them more rank (a data-free heuristic).",
        costs="Each bf16 layer costs about 3.5x its 4-bit memory; the sensitivity pass reads every weight once "
              "(seconds to a minute). Needs an NVIDIA GPU.",
        mergeable=True,
        merge_note="Merging loads the whole base in bf16 and folds the per-layer adapters in.",
    )

    @field_validator("layer_ranks", "bf16_layers", mode="before")
    @classmethod
    def _table_text(cls, v: Any) -> Any:
        return normalise(v)

    @field_validator("layer_ranks")
    @classmethod
    def _ranks_ok(cls, v: str) -> str:
        parse_layer_map(v)
        return v

    @field_validator("bf16_layers")
    @classmethod
    def _layers_ok(cls, v: str) -> str:
        parse_layer_set(v)
        return v

    def rank_table(self, num_layers: int) -> dict[int, int]:
        table = parse_layer_map(self.layer_ranks)
        return {i: table.get(i, self.r) for i in range(num_layers)}

    def bf16_set(self) -> list[int]:
        return parse_layer_set(self.bf16_layers)

    def bf16_layer_total(self, num_layers: int) -> int:
        """How many of the model's decoder layers stay unquantized."""
        if self.allocation != "table":
            return min(num_layers, self.bf16_layer_count)
        return len([i for i in self.bf16_set() if 0 <= i < num_layers])

    def trainable_params(self, facts: ModelFacts) -> int:
        # The sensitivity pass decides ranks at training start but keeps the budget (Rank x layers).
        table = self.rank_table(facts.num_layers) if self.allocation == "table" else None
        targets, _ = select_targets(self.target_modules, facts.linear_shapes)
        return lora_params(facts, targets, self.r, self.rank_map(), dora=False, layer_ranks=table)

    def vram_terms(self, facts: ModelFacts) -> VramTerms:
        # Estimated at Rank in every layer (the budget), with the bf16 layers' weights unquantized.
        return replace(super().vram_terms(facts), bf16_layers=self.bf16_layer_total(facts.num_layers))

    def problems(self, facts: ModelFacts) -> list[str]:
        out = super().problems(facts)
        layers = facts.num_layers
        if not layers:
            return out
        if self.allocation == "table":
            beyond = sorted({i for i in list(parse_layer_map(self.layer_ranks)) + self.bf16_set() if i >= layers})
            if beyond:
                out.append(f"layer tables name layers {', '.join(map(str, beyond))}, but the model has layers "
                           f"0-{layers - 1}")
        elif self.bf16_layer_count > layers:
            out.append(f"bf16_layer_count: the model has {layers} layers; choose at most {layers}")
        return out


def allocate_from_sensitivity(errors: list[float], mean_rank: int, bf16_count: int) -> tuple[dict[int, int], list[int]]:
    """Ranks proportional to each layer's quantization error (budget = mean_rank x layers) and the
    ``bf16_count`` most sensitive layers to keep in bf16. Ranks are multiples of 4 (min 4)."""
    n = len(errors)
    if n == 0:
        return {}, []
    total = sum(errors) or 1.0
    budget = mean_rank * n
    ranks = {i: max(4, int(round(budget * e / total / 4.0)) * 4) for i, e in enumerate(errors)}
    order = sorted(range(n), key=lambda i: errors[i], reverse=True)
    return ranks, sorted(order[:bf16_count])
