"""`studio estimate CONFIG.yaml [--gpu NAME | --memory GB] [--json]`: will this run fit?

Prints the predicted peak memory with its breakdown, the phase of the step that holds it, the
plain transformers + PEFT recipe's number for comparison, and when the run does not fit the
suggested changes (cheapest in speed first) and the largest batch and length that fit.
Exit status: 0 fits (or no GPU to compare with), 1 does not fit, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("estimate", help="predict a run's peak GPU memory",
                              description="Predict the peak GPU memory of a run and whether it fits.")
    p.add_argument("config", nargs="?", help="a run config (YAML or JSON), e.g. a run folder's config.yaml")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gpu", help="plan for a GPU from the catalog, e.g. '4090' or 'A100 80' (default: this machine's)")
    g.add_argument("--memory", type=float, metavar="GB", help="plan for a GPU with this much memory (GiB)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--calibrate", action="store_true",
                   help="fit this machine's overheads to the peaks measured in finished runs, then print "
                        "estimate vs measured for each run (the estimator applies the result from then on)")
    p.set_defaults(func=run)


def _params(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return str(n)


def _gib(n: float) -> str:
    return f"{n / 1024 ** 3:.1f} GiB"


def run(args: Any) -> int:
    from studio.core.config import ConfigError, RunConfig
    from studio.core.models import ModelError, resolve_facts
    from studio.core.vram import (COMPONENT_TITLES, COMPONENTS, estimate, estimate_recipes, limited_budget,
                                  machine_here, resolve_auto)
    from studio.core.vram.gpus import resolve_target
    from studio.core.vram.suggest import fit_limits, suggest

    if args.calibrate:
        return _calibrate(args)
    if not args.config:
        print("studio estimate: give a run config (or --calibrate)", file=sys.stderr)
        return 2
    try:
        config = RunConfig.load(args.config)
        facts = resolve_facts(config.model.source, config.model.path)
        target = resolve_target(args.gpu, args.memory)
    except (ConfigError, ModelError, ValueError) as e:
        print(f"studio estimate: {e}", file=sys.stderr)
        return 2
    budget = limited_budget(target.budget_bytes if target else None, config)
    bf16 = target.bf16 if target else True
    machine = machine_here()  # this machine's calibration, allocator and kernels
    est = estimate(config, facts, budget_bytes=budget, bf16_supported=bf16, machine=machine)
    auto = resolve_auto(config, facts, budget, bf16_supported=bf16, machine=machine)
    recipes = estimate_recipes(config, facts, budget_bytes=budget, machine=machine)
    suggestions = suggest(config, facts, budget, bf16_supported=bf16, machine=machine) if budget is not None else []
    limits = fit_limits(config, facts, budget, bf16_supported=bf16, machine=machine) if budget is not None else None
    fits = est.fits(budget)

    if args.json:
        out = {
            "model": facts.name, "params": facts.num_params, "method": config.method.name,
            "estimate": est.to_dict(), "auto": {"gradient_checkpointing": auto.gradient_checkpointing,
                                                "loss_impl": auto.loss_impl, "reason": auto.reason},
            "target": None if target is None else {"label": target.label, "total_bytes": target.total_bytes,
                                                   "budget_bytes": budget},
            "fits": fits if target else None,
            "recipes": {k: v.device_used for k, v in recipes.items()},
            "suggestions": [{"title": s.title, "changes": s.changes, "speed_cost": s.speed_cost,
                             "device_used": s.device_used, "fits": s.fits} for s in suggestions],
            "limits": None if limits is None else {"max_batch": limits.max_batch, "max_seq_len": limits.max_seq_len},
        }
        print(json.dumps(out, indent=1))
        return 0 if fits else 1

    t = config.training
    s = est.setup
    print(f"Model      {facts.name}: {_params(facts.num_params)} parameters ({facts.architecture or facts.model_type})")
    print(f"Run        {config.method.name}, micro-batch {t.batch_size} x {t.max_seq_len} tokens, "
          f"accumulation {t.grad_accum}, {s.precision}, optimizer {t.optimizer}")
    gc_text = "on" if s.gc else "off"
    if t.gradient_checkpointing == "auto":
        gc_text += f" (auto: {auto.reason})"
    print(f"Engine     checkpointing {gc_text}; loss {s.loss}; attention {s.attention}")
    print(f"Trainable  {est.trainable_params:,} parameters ({100 * est.trainable_params / max(1, est.total_params):.2f}%)")
    print(f"Peak       {_gib(est.device_used)} on the GPU ({_gib(est.peak_allocated)} allocated, "
          f"{_gib(est.peak_reserved)} reserved), at the {est.phase_title}")
    for key in COMPONENTS:
        if est.breakdown[key]:
            print(f"  {COMPONENT_TITLES[key]:<26} {_gib(est.breakdown[key]):>10}")
    for note in est.notes:
        print(f"Note       {note}")
    for name, e in recipes.items():
        if name != "studio":
            print(f"Compare    {e.setup.recipe.title}: {_gib(e.device_used)}")
    if target is None:
        print("GPU        none detected: give --gpu NAME or --memory GB to check the fit")
        return 0
    verdict = (f"fits with {_gib(est.headroom(budget))} headroom" if fits
               else f"does NOT fit: {_gib(-est.headroom(budget))} over")
    cap = f" (your limit {t.memory_limit_gb:g} GB)" if budget != target.budget_bytes else ""
    print(f"GPU        {target.label}: {_gib(budget)} usable of {_gib(target.total_bytes)}{cap} -> {verdict}")
    if limits is not None:
        print(f"Limits     largest micro-batch that fits: {limits.max_batch or 'none'}; "
              f"longest max length at micro-batch {t.batch_size}: {limits.max_seq_len or 'none'}")
    if suggestions:
        print("Suggestions (cheapest in speed first):")
        for i, sug in enumerate(suggestions, 1):
            print(f"  {i}. {sug.title}: {sug.describe()} -> {_gib(sug.device_used)}"
                  f"{' (fits)' if sug.fits else ''}; {sug.speed_cost}")
    return 0 if fits else 1


def _calibrate(args: Any) -> int:
    from studio.core.vram.calibration import calibrate, calibration_path

    overheads, rows = calibrate()
    if args.json:
        print(json.dumps({"overheads": {"activation_scale": overheads.activation_scale,
                                        "frag_fraction": overheads.frag_fraction}, "runs": rows}, indent=1))
        return 0
    if not rows:
        print("No finished GPU runs with recorded memory peaks yet; nothing to calibrate.")
        return 0
    print(f"{'run':<40} {'estimate':>10} {'measured':>10} {'error':>8}")
    for r in rows:
        print(f"{r['run'][:40]:<40} {_gib(r['estimate_allocated']):>10} {_gib(r['measured_allocated']):>10} "
              f"{100 * r['error']:>+7.1f}%")
    print(f"Calibrated from {len(rows)} runs: activation scale {overheads.activation_scale:.3f}, "
          f"allocator share {overheads.frag_fraction:.3f} (saved to {calibration_path()})")
    return 0
