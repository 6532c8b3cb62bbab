"""The VRAM estimator: "will this run fit on this GPU?", answered before anything loads.

``estimate(config, facts, budget_bytes=...)`` takes the RunConfig and the model's facts
(``studio.core.models``) and returns an ``Estimate``: peak allocated / reserved / device memory,
a breakdown, and the phase of the step that holds the peak. ``resolve_auto`` is the decision
the training engine makes for ``gradient_checkpointing: auto`` (on with the memory-saver preset;
with the default "fastest" preset only when the run does not fit without it) and ``loss_impl:
auto`` (chunked). ``suggest`` proposes config changes when a
run does not fit; ``plan_table`` fills the Planner's methods x lengths table. Pure Python: what
the estimate needs to know about the training machine is a ``Machine`` argument (the reference
machine by default; ``machine_here()`` reads this one), never read from files or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from studio.core.config import RunConfig
from studio.core.models import ModelFacts
from studio.core.vram.estimator import (
    COMPONENT_TITLES, COMPONENTS, GIB, MIB, PHASE_TITLES, Estimate, budget_for, estimate_setup, limited_budget,
)
from studio.core.vram.gpus import GPU_CATALOG, GpuSpec, find_gpu, gpu_names
from studio.core.vram.machine import REFERENCE_MACHINE, Machine, Overheads, machine_here
from studio.core.vram.setup import STUDIO, Recipe, Setup, hf_peft_recipe, memory_saver, resolve_setup


@dataclass(frozen=True)
class AutoDecision:
    gradient_checkpointing: bool
    loss_impl: str
    reason: str


def resolve_auto(config: RunConfig, facts: ModelFacts, budget_bytes: Optional[int], *, recipe: Recipe = STUDIO,
                 machine: Machine = REFERENCE_MACHINE, bf16_supported: bool = True) -> AutoDecision:
    """What 'auto' means for this run on this budget: checkpointing with the memory-saver preset or
    when needed, chunked loss."""
    t = config.training
    budget_bytes = limited_budget(budget_bytes, config)
    loss = recipe.force_loss or ("chunked" if t.loss_impl == "auto" else t.loss_impl)
    if t.gradient_checkpointing != "auto":
        on = t.gradient_checkpointing == "on"
        return AutoDecision(on, loss, "set explicitly")
    if memory_saver(config):
        return AutoDecision(True, loss, "memory-saver preset: checkpointing always on for the smallest peak "
                                        "(activations are recomputed in the backward pass)")
    if budget_bytes is None:
        return AutoDecision(False, loss, "no memory limit known: checkpointing stays off")
    without = estimate_setup(resolve_setup(config, facts, recipe=recipe, gc=False, bf16_supported=bf16_supported,
                                           machine=machine), facts, machine.overheads)
    if without.fits(budget_bytes):
        return AutoDecision(False, loss, f"fits without checkpointing ({without.device_used / GIB:.1f} GiB)")
    return AutoDecision(True, loss, f"needs {without.device_used / GIB:.1f} GiB without checkpointing; "
                                    f"{budget_bytes / GIB:.1f} GiB available")


def estimate(config: RunConfig, facts: ModelFacts, *, budget_bytes: Optional[int] = None, recipe: Recipe = STUDIO,
             machine: Machine = REFERENCE_MACHINE, bf16_supported: bool = True) -> Estimate:
    """Peak memory of a training step of ``config`` on the model described by ``facts``, on ``machine``."""
    gc = None
    if config.training.gradient_checkpointing == "auto":
        gc = resolve_auto(config, facts, budget_bytes, recipe=recipe, machine=machine,
                          bf16_supported=bf16_supported).gradient_checkpointing
    setup = resolve_setup(config, facts, recipe=recipe, gc=gc, bf16_supported=bf16_supported, machine=machine)
    return estimate_setup(setup, facts, machine.overheads)


def estimate_recipes(config: RunConfig, facts: ModelFacts, *, machine: Machine = REFERENCE_MACHINE,
                     budget_bytes: Optional[int] = None) -> dict[str, Estimate]:
    """The studio's estimate next to plain transformers + PEFT (with and without kbit prep)."""
    studio = estimate(config, facts, machine=machine, budget_bytes=budget_bytes)
    out = {"studio": studio}
    recipes = [hf_peft_recipe(kbit_prep=False)]
    if studio.setup.terms.quant_bits:
        recipes.insert(0, hf_peft_recipe(kbit_prep=True))
    for r in recipes:
        # Same checkpointing choice as the studio, so the comparison shows the engine's difference.
        out[r.name] = estimate_setup(resolve_setup(config, facts, recipe=r, gc=studio.setup.gc, machine=machine),
                                     facts, machine.overheads)
    return out


__all__ = [
    "AutoDecision", "COMPONENTS", "COMPONENT_TITLES", "Estimate", "GIB", "GPU_CATALOG", "GpuSpec", "MIB", "Machine",
    "Overheads", "PHASE_TITLES", "REFERENCE_MACHINE", "Recipe", "STUDIO", "Setup", "budget_for", "estimate",
    "estimate_recipes", "estimate_setup", "find_gpu", "gpu_names", "hf_peft_recipe", "limited_budget",
    "machine_here", "resolve_auto", "resolve_setup",
]
