"""`studio compare CONFIG.yaml --methods lora,dora,ia3,prompt_tuning [--steps N]`: compare methods.

Same model, data and step budget for every method; the runs are ordinary runs in the RunStore
(grouped by a comparison id in their status.json), trained one after another by the same worker
process the GUI uses. Prints each run's progress, then the comparison table (markdown). Every
method is preflighted before the first run starts, so a comparison does not fail half-way on a
method this machine cannot run. Ctrl-C stops the current run gracefully and skips the rest.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    from studio.core.compare import DEFAULT_METHODS

    p = subparsers.add_parser("compare", help="train several methods on the same model and data, print a table",
                              description="Compare fine-tuning methods: same model, data and step budget.")
    p.add_argument("config", nargs="?", help="a run config (YAML or JSON): model, data and training settings")
    p.add_argument("--demo", action="store_true", help="compare on the embedded demo model and dataset")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated method names (default {','.join(DEFAULT_METHODS)}); "
                        "`studio methods` lists them")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per method (default: the config's)")
    p.add_argument("--same-lr", action="store_true",
                   help="use the config's learning rate for every method (default: scaled by each method's typical rate relative to the config's method)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a config field by dotted path (repeatable)")
    p.add_argument("--output-dir", help="folder to create the run folders in (default: the studio's runs folder)")
    p.add_argument("--json", dest="json_out", help="also write the results as JSON to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the workers' log lines")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from studio.cli.train import load_config, supervise
    from studio.core.compare import (CompareError, comparison_configs, create_comparison, format_table,
                                     model_facts, new_comparison_id, summarise_run)
    from studio.core.config import ConfigError
    from studio.core.preflight import preflight
    from studio.core.runs import RunState, RunStore

    if args.steps is not None and args.steps < 1:
        print("studio compare: --steps must be at least 1", file=sys.stderr)
        return 2
    try:
        base = load_config(args)
        configs = comparison_configs(base, args.methods, steps=args.steps, same_lr=args.same_lr,
                                     facts=model_facts(base))
    except (ConfigError, CompareError) as e:
        print(f"studio compare: {e}", file=sys.stderr)
        return 2
    blocked = {c.method.name: preflight(c) for c in configs}
    blocked = {name: problems for name, problems in blocked.items() if problems}
    if blocked:
        print("studio compare: these methods cannot run here (remove them from --methods):", file=sys.stderr)
        for name, problems in blocked.items():
            for p in problems:
                print(f"  - {name}: {p}", file=sys.stderr)
        return 2
    store = RunStore.for_config(base)
    cid = new_comparison_id()
    runs = create_comparison(store, configs, cid)
    print(f"comparison {cid}: {len(runs)} methods, {configs[0].training.max_steps or 'config'} steps each")
    status = 0
    for i, (cfg, run_) in enumerate(zip(configs, runs), start=1):
        print(f"\n== [{i}/{len(runs)}] {cfg.method.info.title}  (run {run_.id}, lr {cfg.training.learning_rate:g})")
        rc = supervise(run_, verbose=args.verbose)
        if run_.state in (RunState.STOPPED, RunState.KILLED):
            print("comparison stopped; the remaining methods were not run")
            for later in runs[i:]:  # never started: only a config; keep the run history clean
                shutil.rmtree(later.path, ignore_errors=True)
            runs = runs[:i]
            status = 1
            break
        status = status or rc
    rows = [summarise_run(r) for r in runs if r.events()]
    print("\n" + format_table(rows))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"comparison": cid, "rows": [r.to_dict() for r in rows]},
                                                  indent=1), encoding="utf-8")
        print(f"results: {args.json_out}")
    return status
