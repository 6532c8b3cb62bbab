"""Learn this machine's memory overheads from finished runs, and compare estimates with reality.

The worker records ``torch.cuda.max_memory_allocated/reserved`` in every ``step`` event
(``mem_peak_allocated``, ``mem_peak_reserved``). ``estimate_vs_measured(run)`` puts the estimate
for a run's config next to the largest peak it measured (from step 2 on: optimizer states only
exist after the first step). ``calibrate()`` fits two corrections over all measured runs: a
scale on the part of the model that depends on shapes and kernels (activations, logits) and the
allocator's fragmentation share; it stores them as JSON in the studio home, and every estimate made
for this machine applies them (``current_overheads``, read by ``machine.machine_here``).
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from studio.core.config import RunConfig
from studio.core.engine_choice import Choice
from studio.core.paths import studio_home
from studio.core.vram.estimator import Estimate
from studio.core.vram.machine import Machine, Overheads, machine_here
from studio.core.vram.setup import STUDIO, Recipe

if TYPE_CHECKING:
    from studio.core.runs import Run

CALIBRATION_FILE = "vram_calibration.json"
_cache: dict[str, Any] = {"key": None, "value": Overheads()}


def calibration_path() -> Path:
    return studio_home() / CALIBRATION_FILE


def current_overheads() -> Overheads:
    """The stored calibration, or the defaults. Cached until the file changes."""
    path = calibration_path()
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return Overheads()
    if _cache["key"] == key:
        return _cache["value"]
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get("overheads", {})
        names = {f.name for f in fields(Overheads)}
        value = replace(Overheads(), **{k: v for k, v in data.items() if k in names}, source="calibrated")
    except (OSError, ValueError, TypeError, AttributeError):
        value = Overheads()  # a damaged file must never break the estimate; calibrate() rewrites it
    _cache.update(key=key, value=value)
    return value


@dataclass(frozen=True)
class Measured:
    peak_allocated: int
    peak_reserved: int
    steps: int


def measured_peaks(events: list[dict[str, Any]]) -> Optional[Measured]:
    """Largest recorded peaks over steps >= 2 (step 1 runs without optimizer states)."""
    steps = [e for e in events if e.get("type") == "step" and e.get("mem_peak_allocated")]
    later = [e for e in steps if int(e.get("step", 0)) >= 2]
    use = later or steps
    n = len(use)
    alloc = max((int(e["mem_peak_allocated"]) for e in use), default=0)
    reserved = max((int(e.get("mem_peak_reserved") or 0) for e in use), default=0)
    return Measured(alloc, reserved, n) if n else None


def engine_recipe(run: "Run") -> Recipe:
    """The studio recipe as this run's worker actually ran it (fused kernels, the CUDA allocator)."""
    return recipe_as_ran(_plan_choices(run))


def recipe_as_ran(choices: dict[str, Choice]) -> Recipe:
    """The studio recipe with the fused kernels and allocator a run's recorded choices name."""
    kernels = choices.get("kernels")
    fused = kernels.on if kernels is not None else None
    # Expandable segments since the engine sets the allocator; runs from before used PyTorch's
    # default caching allocator.
    allocator = choices.get("allocator")
    expandable = allocator.value.startswith("expandable") if allocator is not None else (False if choices else None)
    return replace(STUDIO, fused_kernels=fused, expandable_segments=expandable)


def _plan_choices(run: "Run") -> dict[str, Choice]:
    """The engine's recorded choices (studio.core.engine_choice), typed; older runs' prose is read too."""
    from studio.core.engine_choice import choices_from_json

    raw: Any = {}
    for e in run.events():
        if e.get("type") == "plan":
            raw = e.get("choices") or {}
    return choices_from_json(raw)


def _engine_config(run: "Run") -> RunConfig:
    """The run's config with the engine's recorded 'auto' decisions made explicit."""
    return config_as_ran(run.config(), _plan_choices(run))


def config_as_ran(config: RunConfig, choices: dict[str, Choice]) -> RunConfig:
    """``config`` with the 'auto' decisions a run recorded (checkpointing, loss, adapter compute) made explicit."""
    gc = choices.get("gradient_checkpointing")
    if gc is not None and gc.value.split()[0] in ("on", "off"):
        config = config.replace("training.gradient_checkpointing", "on" if gc.on else "off")
    loss = choices.get("loss") or choices.get("loss_impl")
    if loss is not None and loss.value in ("standard", "chunked"):
        config = config.replace("training.loss_impl", loss.value)
    # "bf16 compute with fp32 master weights" or "fp32": what the adapters ran in. Runs from before
    # the engine made this choice ran PEFT's fp32 adapter compute.
    compute = choices["adapter_compute"].value.split()[0] if "adapter_compute" in choices else ""
    if compute == "fp32" or (choices and not compute):
        config = config.replace("training.adapter_compute", "fp32")
    elif compute in ("bf16", "fp16"):
        config = config.replace("training.adapter_compute", "auto")
    return config


def estimate_vs_measured(run: "Run",
                         machine: Optional[Machine] = None) -> tuple[Optional[Estimate], Optional[Measured]]:
    """(estimate, measured) for a run on ``machine`` (this one when None: its calibration, and the
    allocator and kernels where the run recorded none); either is None when it cannot be known (no
    GPU peaks recorded, model no longer resolvable)."""
    from studio.core.models import ModelError, resolve_facts
    from studio.core.vram import estimate

    measured = measured_peaks(run.events())
    try:
        config = _engine_config(run)
        facts = resolve_facts(config.model.source, config.model.path)
    except (ModelError, OSError, ValueError):
        return None, measured
    machine = machine_here() if machine is None else machine
    return estimate(config, facts, machine=machine, recipe=engine_recipe(run)), measured


def calibrate(runs: Optional[list["Run"]] = None, *, save: bool = True) -> tuple[Overheads, list[dict[str, Any]]]:
    """Fit the overhead terms to every finished run with measured peaks; returns the new
    overheads and one row per run used (estimate before calibration, measured)."""
    from studio.core.runs import RunStore

    runs = RunStore().list() if runs is None else runs
    base = Overheads()
    machine = replace(machine_here(), overheads=base)
    rows: list[dict[str, Any]] = []
    scales: list[float] = []
    frags: list[float] = []
    for run in runs:
        est, meas = estimate_vs_measured(run, machine)
        if est is None or meas is None or meas.peak_allocated <= 0:
            continue
        b = est.breakdown
        variable = b["activations"] + b["logits"]  # the shape- and kernel-dependent part
        fixed = est.peak_allocated - variable
        if variable > 0:
            scales.append((meas.peak_allocated - fixed) / variable)
        if meas.peak_reserved >= meas.peak_allocated:
            slack = (est.peak_reserved - est.peak_allocated) - int(est.peak_allocated * base.frag_fraction)
            frags.append((meas.peak_reserved - meas.peak_allocated - slack) / meas.peak_allocated)
        rows.append({"run": getattr(run, "id", str(run)), "estimate_allocated": est.peak_allocated,
                     "measured_allocated": meas.peak_allocated, "estimate_reserved": est.peak_reserved,
                     "measured_reserved": meas.peak_reserved,
                     "error": (est.peak_allocated - meas.peak_allocated) / meas.peak_allocated})
    new = base
    if scales:
        new = replace(new, activation_scale=min(2.0, max(0.5, statistics.median(scales))))
    if frags:
        new = replace(new, frag_fraction=min(0.5, max(0.0, statistics.median(frags))))
    new = replace(new, source="calibrated" if rows else "default")
    if save and rows:
        data = {"version": 1, "overheads": {k: v for k, v in asdict(new).items() if k != "source"}, "runs": rows}
        path = calibration_path()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    return new, rows
