"""`studio download HUB_ID [--revision R]`: fetch a model into the Hugging Face cache, as the Model page does.

The same code as the page (studio.core.hub_download): only the files a model needs to load and
train, in a child process, with progress on the terminal. Ctrl-C cancels at once; the partial
files stay in the cache and running the command again resumes them. Exit status: 0 downloaded (or
already in the cache), 1 the download failed, 2 not a hub id, 130 cancelled.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, TextIO


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("download", help="download a model from the Hugging Face hub into its cache",
                              description="Download a model's weights, configs and tokenizer into the Hugging Face "
                                          "cache, where `model: {source: hub, path: HUB_ID}` and the Model page "
                                          "find it. Ctrl-C cancels; running it again resumes.")
    p.add_argument("hub_id", metavar="HUB_ID", help="organisation/model, e.g. Qwen/Qwen2.5-0.5B-Instruct")
    p.add_argument("--revision", help="a branch, tag or commit (default: the main branch)")
    p.set_defaults(func=run)


def run(args: Any, out: TextIO | None = None) -> int:
    from studio.core import hub_download

    out = out or sys.stdout
    problem = hub_download.repo_id_problem(args.hub_id.strip())
    if problem:
        print(f"studio download: {problem}", file=sys.stderr)
        return 2
    repo_id = args.hub_id.strip()
    cached = hub_download.cached_snapshot(repo_id, args.revision)
    if cached is not None:
        print(f"{repo_id} is already in the Hugging Face cache: {cached}", file=out)
        return _describe(repo_id, cached, out)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: cancel.set())
    line = _ProgressLine(out)
    try:
        print(f"Connecting to the hub for {repo_id}…", file=out, flush=True)
        folder = hub_download.download(repo_id, args.revision, line.show, cancel)
    except hub_download.DownloadCancelled as e:
        line.end()
        print(str(e), file=sys.stderr)
        return 130
    except OSError as e:
        line.end()
        print(f"studio download: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    line.end()
    print(f"Downloaded {repo_id} into the Hugging Face cache: {folder}", file=out)
    return _describe(repo_id, folder, out)


def _describe(repo_id: str, folder: str, out: TextIO) -> int:
    """What the page shows once a model is in: its architecture and size, or why it cannot be used."""
    from studio.core.compare import fmt_count
    from studio.core.models import ModelError, inspect_model

    try:
        facts = inspect_model(folder, name=repo_id, hub_id=repo_id)
    except (ModelError, OSError) as e:
        print(f"studio download: it cannot be used: {e}", file=sys.stderr)
        return 1
    print(f"{facts.architecture}, {fmt_count(facts.num_params)} parameters. Train it with "
          f"model: {{source: hub, path: {repo_id}}}", file=out)
    return 0


class _ProgressLine:
    """The download's progress: one line redrawn in place on a terminal, a line every few seconds otherwise."""

    EVERY_S = 5.0

    def __init__(self, out: TextIO):
        self._out = out
        self._tty = bool(getattr(out, "isatty", lambda: False)())
        self._last = 0.0
        self._width = 0
        self._label = ""

    def show(self, current: int, total: int, label: str) -> None:
        self._label = label
        if self._tty:
            text = f"\r{label}"
            self._out.write(text + " " * max(0, self._width - len(text)))
            self._width = len(text)
            self._out.flush()
        elif time.monotonic() - self._last >= self.EVERY_S:
            self._last = time.monotonic()
            print(label, file=self._out, flush=True)

    def end(self) -> None:
        if self._tty and self._width:
            self._out.write("\n")
        elif not self._tty and self._label:
            print(self._label, file=self._out)  # the last state, however recent the previous line
        self._out.flush()
        self._width = 0
