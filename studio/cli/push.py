"""`studio push RUN --repo NAME [--export DIR] [--kind K] [--public]`: upload an export to the Hugging Face Hub.

Runs the same push worker as the GUI (``python -m studio --worker push ...``) with the saved token
(``studio hub login``) and prints its progress. Without ``--export`` it pushes what ``studio
export`` writes by default: ``RUN_DIR/exports/<kind>`` (exported first when it does not exist
yet), or for GGUF the run's one ``exports/gguf-<quant>`` folder (export that one yourself: the
quantization is your choice). Private unless ``--public``. Ctrl-C
cancels (a second one kills the worker); pushing again resumes: files already on the Hub are not
sent again. Exit status 0 when the push completed.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

from studio.cli.train import Renderer

PRINT_EVERY_S = 2.0  # progress lines of one file, at most this often


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("push", help="upload an exported adapter, merged model or GGUF to the Hugging Face Hub",
                              description="Upload a run's export with a generated model card to a Hugging Face Hub "
                                          "repo (private unless --public), with the token saved by `studio hub "
                                          "login`. Pushing again resumes an interrupted upload.")
    p.add_argument("run", help="a run folder, or a run id from `studio runs`")
    p.add_argument("--repo", required=True, help="namespace/name on the Hub (a bare name goes to your account)")
    p.add_argument("--export", help="the exported folder to push (default: RUN_DIR/exports/<kind>, for gguf the "
                                    "run's one exports/gguf-<quant> folder)")
    p.add_argument("--kind", choices=("adapter", "merged", "gguf"),
                   help="what to push (default: adapter, or what --export holds)")
    p.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the worker's log lines")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from studio.cli.export import export, resolve_run
    from studio.core.hub_auth import saved_token
    from studio.core.hub_upload import export_kind

    try:
        run_ = resolve_run(args.run)
    except FileNotFoundError as e:
        print(f"studio push: {e}", file=sys.stderr)
        return 2
    if not saved_token():
        print("studio push: no Hugging Face token: run `studio hub login` (or set HF_TOKEN) with a token that has "
              "write access, from https://huggingface.co/settings/tokens.", file=sys.stderr)
        return 2
    if args.export:
        folder = Path(args.export).expanduser().resolve()
    elif args.kind == "gguf":
        ggufs = sorted(p for p in run_.exports_dir.glob("gguf*") if any(p.glob("*.gguf")))
        if len(ggufs) > 1:
            print(f"studio push: {run_.id} has {len(ggufs)} GGUF exports ({', '.join(p.name for p in ggufs)}); "
                  "choose one with --export DIR", file=sys.stderr)
            return 2
        folder = ggufs[0] if ggufs else run_.exports_dir / "gguf-f16"  # what `studio export --kind gguf` writes
    else:
        folder = run_.exports_dir / (args.kind or "adapter")
    exported = folder.is_dir() and any(folder.iterdir())
    kind = args.kind or (export_kind(folder) if exported else "adapter")
    if not exported:
        if kind == "gguf" or args.export:
            print(f"studio push: {folder} does not exist or is empty; export the run first: "
                  f"studio export {run_.path} --kind {kind}" + (f" --out {folder}" if args.export else ""),
                  file=sys.stderr)
            return 2
        print(f"no {kind} export in {folder} yet: exporting it first")
        if export(run_, kind, folder, verbose=args.verbose) != 0:
            return 1
    return supervise(run_, folder, args.repo, public=args.public, kind=kind, verbose=args.verbose)


def supervise(run_: Any, folder: Path, repo: str, *, public: bool, kind: Optional[str], verbose: bool = False,
              out: Optional[TextIO] = None) -> int:
    """Start the push worker and print its events until it ends; Ctrl-C cancels, a second one kills."""
    from studio.cli.train import follow
    from studio.core.launcher import spawn_worker
    from studio.core.push_job import JOB, push_args

    out = out or sys.stdout
    proc = spawn_worker(run_, JOB, *push_args(folder, repo, public=public, kind=kind))
    interrupts = 0

    def on_sigint(_sig: int, _frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            proc.terminate()  # the worker's own session: the terminal's Ctrl-C does not reach it
            print("\ncancelling the upload (Ctrl-C again to kill)...", file=out, flush=True)
        else:
            proc.kill()

    previous = signal.signal(signal.SIGINT, on_sigint)
    render = PushRenderer(out, verbose)
    try:
        follow(proc, render, out)
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupts >= 2:
        return 130
    if render.done is None:
        print(f"the push worker exited (code {rc}) without finishing; push again to resume.", file=out)
        return 1
    return 0 if render.done.get("status") == "completed" and rc == 0 else 1


class PushRenderer(Renderer):
    """Push events as short lines: one per file, with bytes while a large one streams."""

    def __init__(self, out: TextIO, verbose: bool):
        super().__init__(out, verbose)
        self._label = ""
        self._printed = 0.0

    def _on_phase(self, e: dict) -> None:
        if e.get("phase") != "pushing":  # the push event says it all
            super()._on_phase(e)

    def _on_push(self, e: dict) -> None:
        self._print(f"pushing {e['files']} files ({_size(e['bytes'])}) from {e['folder']} to {e['repo_id']} "
                    f"({'private' if e['private'] else 'public'}) as {e.get('account', '?')}")

    def _on_progress(self, e: dict) -> None:
        if e.get("unit") != "bytes":
            return super()._on_progress(e)
        now = time.monotonic()
        if e["label"] == self._label and now - self._printed < PRINT_EVERY_S:
            return
        self._label, self._printed = e["label"], now
        share = f"{100 * e['current'] / e['total']:.0f}%" if e["total"] else ""
        self._print(f"{e['label']}  {_size(e['current'])} of {_size(e['total'])} {share}".rstrip())

    def _on_pushed(self, e: dict) -> None:
        self._print(f"sent {len(e['sent'])} file(s), {_size(e['sent_bytes'])}; "
                    f"{len(e['kept'])} already on the Hub")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
