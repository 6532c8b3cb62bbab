"""The Planner's table: for one model and one GPU, the largest micro-batch per method and length;
and, the other way round, which GPUs a run fits on as configured.

Each row is a registered method with a few settings, so the table shows the whole landscape
(QLoRA to full fine-tuning) for comparison. Training settings other than batch and length come
from a base RunConfig (the current one in the GUI), with 'auto' checkpointing and loss resolved
as the engine resolves them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from studio.core.config import RunConfig
from studio.core.models import ModelFacts
from studio.core.vram.gpus import GPU_CATALOG, GpuSpec
from studio.core.vram.machine import REFERENCE_MACHINE, Machine
from studio.core.vram.setup import STUDIO, Recipe, resolve_setup
from studio.core.vram.suggest import MAX_BATCH, _largest, _setup_fits

# (method name, title, fields): the rows of the table, in the order shown.
PLAN_METHODS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("qlora", "QLoRA 4-bit r16", {"r": 16, "bits": 4}),
    ("lora", "LoRA r16", {"r": 16}),
    ("dora", "DoRA r16", {"r": 16}),
    ("ia3", "IA3", {}),
    ("prompt_tuning", "Prompt tuning (20 tokens)", {"num_virtual_tokens": 20}),
    ("galore", "GaLore r128", {"rank": 128}),
    ("full", "Full fine-tuning", {}),
)
PLAN_SEQ_LENS: tuple[int, ...] = (512, 1024, 2048, 4096, 8192, 16384, 32768)
NOT_APPLICABLE = -1  # longer than the model's context window


@dataclass(frozen=True)
class PlanRow:
    method: str
    title: str
    max_batch: list[int]  # one per sequence length; 0 = does not fit, -1 = beyond the context


@dataclass(frozen=True)
class PlanTable:
    model: str
    budget_bytes: int
    seq_lens: list[int]
    rows: list[PlanRow]
    notes: list[str] = field(default_factory=list)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["method"] + [f"seq {s}" for s in self.seq_lens])
        for r in self.rows:
            w.writerow([r.title] + [("n/a" if b == NOT_APPLICABLE else b) for b in r.max_batch])
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "budget_bytes": self.budget_bytes, "seq_lens": self.seq_lens,
                "rows": [{"method": r.method, "title": r.title, "max_batch": r.max_batch} for r in self.rows],
                "notes": self.notes}


def _config_view(base: RunConfig, method: str, fields: dict[str, Any], seq: int) -> RunConfig:
    """``base`` with this method and length, at micro-batch 1 (not validated again: a view)."""
    from studio.core.methods import method_class

    training = base.training.model_copy(update={"max_seq_len": seq, "batch_size": 1})
    return base.model_copy(update={"method": method_class(method)(**fields), "training": training})


def plan_table(facts: ModelFacts, budget_bytes: int, *, base_config: Optional[RunConfig] = None,
               methods: Optional[tuple[tuple[str, str, dict[str, Any]], ...]] = None,
               seq_lens: Optional[tuple[int, ...]] = None, recipe: Recipe = STUDIO,
               machine: Machine = REFERENCE_MACHINE, bf16_supported: bool = True) -> PlanTable:
    base = base_config or RunConfig()
    ov = machine.overheads
    seqs = list(seq_lens or PLAN_SEQ_LENS)
    gc_mode = base.training.gradient_checkpointing
    rows = []
    for name, title, fields in methods or PLAN_METHODS:
        cells = []
        for seq in seqs:
            if facts.max_position_embeddings and seq > facts.max_position_embeddings:
                cells.append(NOT_APPLICABLE)
                continue
            view = _config_view(base, name, fields, seq)
            setups = {g: resolve_setup(view, facts, recipe=recipe, gc=g, bf16_supported=bf16_supported,
                                       machine=machine) for g in (False, True)}

            def fits(b: int, setups=setups) -> bool:
                return _setup_fits(lambda g: replace(setups[g], batch=b), facts, ov, budget_bytes, gc_mode)

            cells.append(max(0, _largest(fits, 1, MAX_BATCH)))
        rows.append(PlanRow(name, title, cells))
    notes = [f"micro-batch limits with gradient checkpointing {gc_mode}, loss {base.training.loss_impl}, "
             f"optimizer {base.training.optimizer}; QLoRA and 8-bit optimizers need an NVIDIA GPU"]
    return PlanTable(facts.name, budget_bytes, seqs, rows, notes)


@dataclass(frozen=True)
class GpuFit:
    gpu: GpuSpec
    device_used: int  # with 'auto' decisions made for this card
    fits: bool


def gpu_fits(config: RunConfig, facts: ModelFacts, *, recipe: Recipe = STUDIO,
             machine: Machine = REFERENCE_MACHINE) -> list[GpuFit]:
    """Every catalog card, smallest memory first, with whether the run as configured fits on it."""
    from studio.core.vram import estimate
    from studio.core.vram.estimator import budget_for

    out = []
    for gpu in sorted(GPU_CATALOG, key=lambda g: (g.memory_bytes, g.name)):
        budget = budget_for(gpu.memory_bytes)
        e = estimate(config, facts, budget_bytes=budget, recipe=recipe, machine=machine, bf16_supported=gpu.bf16)
        out.append(GpuFit(gpu, e.device_used, e.fits(budget)))
    return out
