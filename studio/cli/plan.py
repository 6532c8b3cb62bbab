"""`studio plan MODEL --gpu NAME [--csv]`: the largest micro-batch per method and length.

MODEL is a local model folder, a hub id in the Hugging Face cache, a name from the bundled
catalog (``studio plan --list`` shows them) or ``demo``. Training settings other than batch
and length come from ``--config`` when given, else the defaults.
"""

from __future__ import annotations

import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("plan", help="which methods fit a GPU, at which batch and length",
                              description="Table of the largest micro-batch that fits, per method and length.")
    p.add_argument("model", nargs="?", help="model folder, cached hub id, catalog name (e.g. Llama-3.1-8B) or 'demo'")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gpu", help="a GPU from the catalog, e.g. '4090' (default: this machine's)")
    g.add_argument("--memory", type=float, metavar="GB", help="a GPU with this much memory (GiB)")
    p.add_argument("--config", help="take the other training settings from this run config")
    p.add_argument("--seq", help="comma-separated lengths (default 512,1024,...,32768)")
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.add_argument("--list", action="store_true", help="list the bundled catalog's models and GPUs, then exit")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from studio.core.config import ConfigError, RunConfig
    from studio.core.models import ModelError, catalog_names, resolve_facts
    from studio.core.vram import machine_here
    from studio.core.vram.gpus import gpu_names, resolve_target
    from studio.core.vram.plan import plan_table

    if args.list:
        print("Models:\n  " + "\n  ".join(catalog_names()))
        print("GPUs:\n  " + "\n  ".join(gpu_names()))
        return 0
    if not args.model:
        print("studio plan: name a model (a folder, a cached hub id or a catalog name; --list shows the catalog)",
              file=sys.stderr)
        return 2
    try:
        facts = resolve_facts("demo" if args.model == "demo" else "hub", args.model)
        target = resolve_target(args.gpu, args.memory)
        base = RunConfig.load(args.config) if args.config else RunConfig()
        seqs = tuple(int(x) for x in args.seq.split(",")) if args.seq else None
        if seqs and any(s < 8 for s in seqs):
            raise ValueError("lengths must be at least 8 tokens")
    except (ModelError, ConfigError, ValueError) as e:
        print(f"studio plan: {e}", file=sys.stderr)
        return 2
    if target is None:
        print("studio plan: no NVIDIA GPU detected here; choose one with --gpu NAME (see --list) or --memory GB",
              file=sys.stderr)
        return 2
    machine = machine_here()  # this machine's calibration, allocator and kernels
    table = plan_table(facts, target.budget_bytes, base_config=base, seq_lens=seqs, bf16_supported=target.bf16,
                       machine=machine)
    if args.csv:
        sys.stdout.write(table.to_csv())
        return 0
    from studio.cli.estimate import _params
    from studio.core.vram.suggest import MAX_BATCH

    print(f"{facts.name} ({_params(facts.num_params)} parameters) on {target.label}: "
          f"{target.budget_bytes / 1024 ** 3:.1f} GiB usable. Largest micro-batch that fits:")
    width = max(len(r.title) for r in table.rows) + 2
    print(" " * width + "".join(f"{s:>8}" for s in table.seq_lens))
    for r in table.rows:
        cells = "".join(f"{_cell(b, MAX_BATCH):>8}" for b in r.max_batch)
        print(f"{r.title:<{width}}{cells}")
    print("('-' = does not fit even one sequence; n/a = longer than the model's context)")
    for n in table.notes:
        print(f"Note: {n}")
    if args.config:
        from studio.core.vram.plan import gpu_fits

        t = base.training
        fitting = [f.gpu.name for f in gpu_fits(base, facts, machine=machine) if f.fits]
        print(f"The config as written ({base.method.name}, micro-batch {t.batch_size} x {t.max_seq_len}) fits on: "
              + (", ".join(fitting) if fitting else "none of the cards in the catalog"))
    return 0


def _cell(b: int, cap: int) -> str:
    if b == -1:
        return "n/a"
    if b == 0:
        return "-"
    return f"{b}+" if b >= cap else str(b)
