"""Download a model from the Hugging Face hub into its cache, with progress and a prompt cancel (no Qt).

The Model page runs ``download`` in a background task and shows its progress; `studio download
HUB_ID` runs it in the terminal (Ctrl-C cancels). Being offline is an ordinary answer, with the
reason, not an exception.

A download runs ``snapshot_download`` in a child process (multiprocessing "spawn"; the frozen
app's entry calls ``freeze_support``) so that Cancel can end it at once: the calling thread waits on
the child's progress pipe in short polls and terminates the child when the user cancels. A
cooperative cancel (raising from the progress bar's ``update``) is not prompt: plain HTTP
downloads update the bar once per 10 MB chunk (seconds, or minutes, on a slow line), Xet
downloads call it from Rust threads that keep transferring, and ``snapshot_download`` waits for
every file worker before it returns. Ending the process stops all of it; the partial
``.incomplete`` files stay in the cache and the next download of the same model resumes them.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from typing import Any, Callable, Optional

from studio.core.hub import offline_reason

# What a model needs to load and train; skips other-format duplicates (pytorch .bin next to
# safetensors, GGUF, ONNX, TF/Flax weights).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja", "tokenizer*"]

# "module:function" the child calls with snapshot_download's arguments (tests name a fake here: a
# monkeypatch in this process would not reach the child).
SNAPSHOT_DOWNLOAD = "huggingface_hub:snapshot_download"

CANCELLED_MESSAGE = ("Download cancelled; the partial files stay in the Hugging Face cache and a new download "
                     "resumes them.")

POLL_S = 0.1  # how often the waiting thread looks at the cancel flag
PROGRESS_EVERY_S = 0.15  # the child reports at most this often (plus every finished bar)


class DownloadCancelled(OSError):
    """The user cancelled; an OSError so the task reports it as a plain message."""


def repo_id_problem(repo_id: str) -> str:
    """Why ``repo_id`` is not a hub model id (organisation/model), or ""."""
    if not repo_id or repo_id.count("/") != 1 or " " in repo_id:
        return "Enter a hub id like organisation/model (e.g. Qwen/Qwen2.5-0.5B-Instruct)."
    return ""


def cached_snapshot(repo_id: str, revision: Optional[str] = None) -> Optional[str]:
    """The model's folder when it is already in the Hugging Face cache (its default revision), else None."""
    if revision:
        return None  # the cache scan knows snapshots, not which branch or tag each one is
    from studio.core.models import find_in_hf_cache

    found = find_in_hf_cache(repo_id)
    return str(found) if found is not None else None


def download(repo_id: str, revision: Optional[str], progress: Callable[[int, int, str], None],
             cancel: Optional[threading.Event] = None) -> str:
    """Download a model into the HF cache with progress; returns the snapshot folder.

    Blocks (run it from a background task). Setting ``cancel`` ends the download within about
    ``POLL_S`` plus the time the child takes to die, and raises DownloadCancelled.
    """
    reason = offline_reason()
    if reason:
        raise OSError(reason + " Use a local folder or a model already in the cache.")
    ctx = multiprocessing.get_context("spawn")  # fork would copy the GUI's threads and Qt state
    receiver, sender = ctx.Pipe(duplex=False)
    # daemon: the download ends with the app instead of outliving it
    child = ctx.Process(target=_child_main, args=(SNAPSHOT_DOWNLOAD, repo_id, revision, sender),
                        name="studio-hub-download", daemon=True)
    child.start()
    sender.close()  # the child holds the only writer: EOF then means the child is gone
    grace_s = 0.0
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(CANCELLED_MESSAGE)
            if not receiver.poll(POLL_S):
                continue
            try:
                message = receiver.recv()
            except EOFError:
                child.join(2.0)
                raise OSError(f"The download of {repo_id!r} stopped unexpectedly (exit code {child.exitcode}). "
                              "Try again; what was fetched so far is resumed.") from None
            if message[0] == "progress":
                progress(*_progress_view(repo_id, *message[1:]))
            elif message[0] == "done":
                grace_s = 2.0
                return message[1]
            else:
                grace_s = 2.0
                raise OSError(message[1])
    finally:
        receiver.close()
        _end(child, grace_s)


def _end(child: Any, grace_s: float) -> None:
    """Let a finished child exit; terminate one still downloading, kill it if it ignores that."""
    child.join(grace_s)
    if child.is_alive():
        child.terminate()
        child.join(2.0)
    if child.is_alive():
        child.kill()
        child.join(2.0)


def _progress_view(repo_id: str, files: int, files_total: int, done_bytes: int,
                   total_bytes: int) -> tuple[int, int, str]:
    """(current, total, label) for the page; bytes when the hub reported sizes, else files."""
    files_text = f"{files} of {files_total} files" if files_total else ""
    if total_bytes:
        # MiB: the progress bar and the signal carry 32-bit ints
        label = f"{repo_id}: {_fmt_bytes(done_bytes)} of {_fmt_bytes(total_bytes)}"
        return done_bytes >> 20, max(1, total_bytes >> 20), label + (f" ({files_text})" if files_text else "")
    return files, files_total, f"{repo_id}: {files_text or 'starting'}"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# ---- in the child process ----------------------------------------------------------------
def _child_main(target: str, repo_id: str, revision: Optional[str], conn: Any) -> None:
    """Run the download, sending ("progress", ...), then ("done", folder) or ("failed", message)."""
    try:
        module, _, name = target.partition(":")
        snapshot_download = getattr(importlib.import_module(module), name)
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=ALLOW_PATTERNS,
                                   tqdm_class=_progress_class(conn))
        conn.send(("done", str(folder)))
    except Exception as e:  # huggingface_hub raises many types; all mean "could not download"
        conn.send(("failed", _explain(repo_id, e)))
    finally:
        conn.close()


def _progress_class(conn: Any) -> type:
    """A tqdm class that forwards the download's bars over ``conn`` instead of drawing them.

    huggingface_hub passes it to several bars: the file count (unit "it") and byte bars (unit
    "B": bytes written and, for Xet, bytes transferred). The furthest byte bar stands for the bytes.
    """
    from tqdm.auto import tqdm

    bars: list[Any] = []
    last_sent = [0.0]
    devnull = open(os.devnull, "w")  # the child has no terminal worth drawing on

    def send(force: bool) -> None:
        now = time.monotonic()
        if not force and now - last_sent[0] < PROGRESS_EVERY_S:
            return
        last_sent[0] = now
        files = next((b for b in bars if b.unit != "B"), None)
        byte_bars = [b for b in bars if b.unit == "B" and b.total]
        by = max(byte_bars, key=lambda b: b.n, default=None)
        conn.send(("progress", int(files.n) if files else 0, int(files.total or 0) if files else 0,
                   int(by.n) if by else 0, int(by.total or 0) if by else 0))

    class _Progress(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False  # a disabled bar does not count
            kwargs["file"] = devnull
            super().__init__(*args, **kwargs)
            bars.append(self)

        def update(self, n=1):
            super().update(n)
            send(force=bool(self.total) and self.n >= self.total)

    return _Progress


def _explain(repo_id: str, e: Exception) -> str:
    name = type(e).__name__
    if "RepositoryNotFound" in name or "404" in str(e):
        return f"{repo_id!r} was not found on the hub (check the spelling, or log in for private/gated models)."
    if "GatedRepo" in name:
        return (f"{repo_id!r} is gated: accept its licence on huggingface.co and log in "
                "(huggingface-cli login), then try again.")
    return f"Downloading {repo_id!r} failed: {e}"
