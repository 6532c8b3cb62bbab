"""``--worker push RUN_DIR --folder DIR --repo ID [--public] [--kind K]``: upload an export to the Hub.

Network work only, no torch: it writes the model card for the repo (studio.core.model_card, with
the repo id in its usage code), then runs studio.core.hub_upload.push with the token
huggingface_hub reads (HF_TOKEN or the saved login; never on the command line). Events go to
``RUN_DIR/exports/push.jsonl`` and the log to ``push.log`` (studio.core.push_job), so pushing never
rewrites the training record: ``push`` (what goes where), ``progress`` in bytes, ``warning``,
``pushed`` (the outcome), then ``done``; a failure is an ``error`` of kind auth, network, config
or disk whose message says what to do.

Cancelling: SIGTERM or SIGINT end the upload at once; a ``RUN_DIR/stop.request`` written after the
job started (what the GUI's WorkerProcess.stop() writes) ends it at the next 64 KB read of a file
(while the job waits for the Hub's answer to a file it has finished reading, only a signal is
prompt). Either way ``done`` has status ``stopped``. Killing the job is as safe: the next push of
the same folder resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from studio import __version__
from studio.core.hub_auth import HubError, whoami
from studio.core.hub_upload import PushCancelled, export_kind, folder_problem, full_repo_id, local_files, push
from studio.core.model_card import build_card
from studio.core.push_job import EVENTS_FILE, LOG_FILE
from studio.core.runs import Run, process_started
from studio.worker.reporter import Reporter


def main(run_dir: str | Path, folder: str | Path, repo: str, *, public: bool = False,
         kind: Optional[str] = None) -> int:
    run = Run(Path(run_dir))
    folder = Path(folder).expanduser().resolve()
    run.exports_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    stop = threading.Event()
    with Reporter(run.path, events_path=run.exports_dir / EVENTS_FILE, log_path=run.exports_dir / LOG_FILE) as rep:
        rep.emit("hello", pid=os.getpid(), pid_started=process_started(os.getpid()), version=__version__,
                 argv=sys.argv)

        def cancelled() -> bool:
            return stop.is_set() or _stop_file_since(run, started)

        try:
            kind = kind or export_kind(folder)
            problem = folder_problem(folder, kind)
            if problem:
                raise HubError(problem, "config")
            account = whoami()
            repo_id = full_repo_id(repo, account)
            card = build_card(run, kind, folder=folder, repo_id=repo_id).files
            files = local_files(folder, card)
            rep.log(f"pushing as {account.describe()}")
            rep.emit("phase", phase="pushing", detail=f"{kind} -> {repo_id} ({'public' if public else 'private'})")
            rep.emit("push", repo_id=repo_id, folder=str(folder), kind=kind, private=not public, files=len(files),
                     bytes=sum(f.size for f in files), account=account.name)
            with _cancel_on_signals(stop):
                result = push(folder, repo_id, private=not public, kind=kind, card=card, account=account,
                              progress=lambda done, total, label: rep.emit("progress", label=label, current=done,
                                                                           total=total, unit="bytes"),
                              cancel=cancelled, warn=lambda message: rep.emit("warning", message=message))
        except PushCancelled as e:
            rep.emit("done", status="stopped", message=e.message)
            return 0
        except HubError as e:
            rep.emit("error", message=e.message, kind=e.kind)
            rep.emit("done", status="failed", message=e.message)
            return 1
        except BaseException as e:  # noqa: BLE001 - report every failure as an event
            tb = traceback.format_exc()
            rep.log(tb.rstrip())
            message = f"The upload failed: {type(e).__name__}: {e}"
            rep.emit("error", message=message, kind="internal", traceback=tb)
            rep.emit("done", status="failed", message=message)
            return 1
        finally:
            _clear_stop_file(run, started)
        rep.emit("pushed", repo_id=result.repo_id, url=result.url, private=result.private, sent=result.sent,
                 kept=result.kept, sent_bytes=result.sent_bytes, commit=result.commit)
        what = (f"{len(result.sent)} file(s) sent" + (f", {len(result.kept)} already there" if result.kept else "")
                if result.sent else "everything was already there")
        rep.emit("done", status="completed",
                 message=f"Pushed to {result.url} ({'private' if result.private else 'public'}; {what}).")
        return 0


@contextmanager
def _cancel_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT cancel the upload at once; the previous handlers come back after it.

    The handler raises rather than only setting ``stop``: a push waiting for the Hub's answer to a
    file it has finished reading (the socket buffers hold the rest) would otherwise wait it out.
    It writes nothing itself: it may run while the reporter holds its lock.
    """
    def handler(_signum: int, _frame: object) -> None:
        stop.set()
        raise PushCancelled()

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stop_file_since(run: Run, started: float) -> bool:
    """A stop request written while this job ran (an older one belongs to a training attempt)."""
    try:
        return run.stop_path.stat().st_mtime >= started
    except OSError:
        return False


def _clear_stop_file(run: Run, started: float) -> None:
    if _stop_file_since(run, started):
        try:
            run.stop_path.unlink()
        except OSError:
            pass
