"""`studio train CONFIG.yaml [--set training.max_steps=20 ...]` / `studio train --demo`: train headless.

`studio train --resume RUN_DIR` continues a stopped, failed or killed run in place from its newest
checkpoint (same folder; the curve goes on from the checkpoint's step), or says why it cannot.

Same config, same checks and same worker process as the GUI: the run folder is created through
RunStore, preflight() runs, and `python -m studio --worker train RUN_DIR` does the work while this
command renders its events as progress lines. Ctrl-C asks for a graceful stop (the worker finishes
the step and saves); a second Ctrl-C kills it. Exit status: 0 completed, 1 failed or stopped,
2 bad input (config, preflight), 130 killed by a second Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="train a run from a config file (or the demo)",
                              description="Train a run headless, with the same worker the studio uses.")
    p.add_argument("config", nargs="?", help="a run config (YAML or JSON)")
    p.add_argument("--demo", action="store_true", help="train the embedded demo with its default settings")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field by dotted path, e.g. --set training.max_steps=20 (repeatable)")
    p.add_argument("--output-dir", help="folder to create the run folder in (default: the studio's runs folder)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a stopped, failed or killed run from its newest checkpoint, in the same folder")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the worker's log lines")
    p.set_defaults(func=run)


def load_config(args: Any):
    """The RunConfig from the file or the demo, with --set overrides applied; ConfigError if bad."""
    import yaml
    from pydantic import ValidationError

    from studio.core.config import ConfigError, RunConfig, demo_config, describe_validation_error

    if args.demo == bool(args.config):
        raise ConfigError("give a config file or --demo (not both)")
    cfg = demo_config() if args.demo else RunConfig.load(args.config)
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE, e.g. training.max_steps=20")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        try:
            cfg = cfg.replace(key.strip(), value)
        except (KeyError, TypeError):
            raise ConfigError(f"--set {key}: no such field") from None
        except ValidationError as e:
            raise ConfigError(f"--set {item}: {describe_validation_error(e)}") from None
    if args.output_dir:
        cfg = cfg.replace("output_dir", str(Path(args.output_dir).expanduser().resolve()))
    return cfg


def run(args: Any) -> int:
    if getattr(args, "resume", None):
        return resume(args)
    from studio.core.config import ConfigError
    from studio.core.preflight import preflight
    from studio.core.runs import RunStore

    try:
        cfg = load_config(args)
    except ConfigError as e:
        print(f"studio train: {e}", file=sys.stderr)
        return 2
    problems = preflight(cfg)
    if problems:
        print("studio train: cannot start this run:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    run_ = RunStore.for_config(cfg).create(cfg)  # an --output-dir folder is remembered: `studio runs` lists it
    print(f"run {run_.id}  ({run_.path})")
    return supervise(run_, verbose=args.verbose)


def resume(args: Any) -> int:
    """Continue RUN_DIR from its newest checkpoint, or explain (exit 2) why it cannot be."""
    from studio.core.checkpoints import describe, resume_problem
    from studio.core.runs import Run

    if args.config or args.demo or args.overrides or args.output_dir:
        print("studio train: --resume continues a run exactly as it was configured; give only the run folder "
              "(no config file, --demo, --set or --output-dir)", file=sys.stderr)
        return 2
    path = Path(args.resume).expanduser().resolve()
    if not path.is_dir():
        print(f"studio train: {path}: no such run folder", file=sys.stderr)
        return 2
    run_ = Run(path)
    problem = resume_problem(run_)
    if problem:
        print(f"studio train: cannot resume {run_.id}: {problem}", file=sys.stderr)
        return 2
    print(f"run {run_.id}  ({run_.path})\n{describe(run_)}")
    return supervise(run_, verbose=args.verbose, resume=True)


def launch(run_: Any, resume: bool = False) -> subprocess.Popen:
    """Start the training worker exactly as the GUI does (studio.core.launcher)."""
    from studio.core.launcher import spawn_worker

    return spawn_worker(run_, "train", *(("--resume",) if resume else ()))


def worker_lines(proc: subprocess.Popen):
    """The worker's output lines as text (its stdout is bytes; a bad byte never stops the reading)."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        yield raw.decode("utf-8", errors="replace")


def follow(proc: subprocess.Popen, render: Any, out: TextIO) -> None:
    """Hand each of the worker's lines to ``render`` until its output ends: events to ``render.event``,
    plain lines to ``render.log``; a line of another protocol version is reported and skipped."""
    from studio.core.protocol import ProtocolError, decode

    for line in worker_lines(proc):
        try:
            event = decode(line)
        except ProtocolError as e:
            print(f"protocol: {e}", file=out)
            continue
        if event is None:
            render.log(line.rstrip("\n"))
        else:
            render.event(event)


def supervise(run_: Any, verbose: bool = False, out: Optional[TextIO] = None, resume: bool = False) -> int:
    out = out or sys.stdout  # resolved per call: the current stdout, not the one at import
    from studio.core.runs import RunState

    proc = launch(run_, resume=resume)
    interrupts = 0

    def on_sigint(_sig: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            run_.request_stop()
            print("\nstopping after the current step (Ctrl-C again to kill)...", file=out, flush=True)
        else:
            proc.kill()
            run_.write_status(state=RunState.KILLED, ended=time.time(), message="Killed with a second Ctrl-C.")
            print("\nkilled", file=out, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    render = Renderer(out, verbose)
    try:
        follow(proc, render, out)
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupts >= 2:
        return 130
    state = run_.reconcile()
    if render.done is None:
        print(f"the worker exited (code {rc}) without finishing; last log lines:\n{run_.log_tail(15)}", file=out)
    elif render.internal_error and not verbose:
        print(f"last log lines ({run_.log_path}):\n{run_.log_tail(15)}", file=out)
    return 0 if state == RunState.COMPLETED and rc == 0 else 1


class Renderer:
    """Protocol events as short human lines."""

    def __init__(self, out: TextIO, verbose: bool):
        self.out = out
        self.verbose = verbose
        self.done: Optional[dict] = None
        self.failed = False
        self.internal_error = False

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def log(self, line: str) -> None:
        if self.verbose and line.strip():
            self._print(f"  | {line}")

    def event(self, e: dict) -> None:
        kind = e.get("type")
        handler = getattr(self, f"_on_{kind}", None)
        if handler:
            handler(e)

    def _on_phase(self, e: dict) -> None:
        if e.get("phase") not in ("training", "evaluating"):
            self._print(f"{e['phase'].replace('_', ' ')}: {e.get('detail', '')}".rstrip(": "))

    def _on_plan(self, e: dict) -> None:
        self._print(f"plan: {e['total_steps']} steps ({e.get('steps_per_epoch')} per epoch), "
                    f"{e.get('train_rows')} training rows, {e.get('val_rows', 0)} validation rows, "
                    f"{_count(e.get('trainable_params'))} of {_count(e.get('total_params'))} parameters trained, "
                    f"{e.get('device')} {e.get('precision')}")
        from studio.core.engine_choice import choices_from_json

        for key, choice in choices_from_json(e.get("choices")).items():
            self._print(f"  {key}: {choice.text()}")

    def _on_step(self, e: dict) -> None:
        parts = [f"step {e['step']:>{len(str(e['total_steps']))}}/{e['total_steps']}",
                 f"loss {e['loss']:.4f}", f"lr {e['lr']:.2e}"]
        if e.get("grad_norm") is not None:
            parts.append(f"grad {e['grad_norm']:.2f}")
        parts.append(f"{e.get('tokens_per_s', 0):,.0f} tok/s")
        if e.get("mem_peak_reserved"):
            parts.append(f"peak {e['mem_peak_reserved'] / 2**30:.1f} GiB")
        parts.append(f"eta {_duration(e.get('eta_s', 0))}")
        self._print("  ".join(parts))

    def _on_eval(self, e: dict) -> None:
        self._print(f"eval  step {e['step']}  val loss {e['val_loss']:.4f}")

    def _on_checkpoint(self, e: dict) -> None:
        self._print(f"checkpoint: {e['path']}")

    def _on_artifact(self, e: dict) -> None:
        if e.get("kind") != "checkpoint":
            self._print(f"saved {e['kind']}: {e['path']}")

    def _on_progress(self, e: dict) -> None:
        self._print(f"{e.get('label', '')} ({e.get('current')}/{e.get('total')})")

    def _on_estimate(self, e: dict) -> None:
        self._print(f"estimate ({e.get('quant') or e['kind']}): {e.get('detail') or e['size_bytes']}")

    def _on_verification(self, e: dict) -> None:
        """The verdict in a box: a failed check must not scroll past unnoticed."""
        rule = "=" * 72
        self._print(rule)
        self._print(e["summary"])
        for c in e.get("checks") or []:
            self._print(f"  {'ok    ' if c.get('passed') else 'FAILED'}  {c.get('name')}: {c.get('detail')}")
        self._print(f"  verdict saved: {e['path']}")
        self._print(rule)

    def _on_warning(self, e: dict) -> None:
        self._print(f"warning: {e['message']}")

    def _on_error(self, e: dict) -> None:
        self.failed = True
        self.internal_error = e.get("kind") == "internal"
        self._print(f"error ({e.get('kind')}): {e['message']}")

    def _on_done(self, e: dict) -> None:
        self.done = e
        self._print(f"{e['status']}: {e.get('message', '')}")


def _count(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def _duration(seconds: float) -> str:
    seconds = int(seconds or 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
