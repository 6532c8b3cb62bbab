"""The push job as the GUI and the CLI see it: its command line, and what the last push of a run did.

A push runs as a worker job (``python -m studio --worker push RUN_DIR --folder DIR --repo ID``,
studio.worker.push), so the window stays responsive and a cancel can end it at once. Its events
go to ``RUN_DIR/exports/push.jsonl`` (appended, one attempt after another) and its log to
``push.log``. ``last_push(run)`` reads the newest attempt back, so a page opened later can offer
to resume an upload that was cancelled, failed or cut short: resuming is starting the same job
again (files already on the Hub are not sent again).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from studio.core.protocol import read_events
from studio.core.runs import Run, pid_alive

JOB = "push"
EVENTS_FILE = "push.jsonl"
LOG_FILE = "push.log"


def push_args(folder: Path | str, repo_id: str, *, public: bool = False, kind: Optional[str] = None) -> tuple[str, ...]:
    """The arguments after ``--worker push RUN_DIR`` (for studio.core.launcher.spawn_worker or WorkerProcess)."""
    args = ["--folder", str(Path(folder).expanduser().resolve()), "--repo", repo_id]
    if public:
        args.append("--public")
    if kind:
        args += ["--kind", kind]
    return tuple(args)


@dataclass(frozen=True)
class PushRecord:
    """The newest push attempt of a run. ``status``: running, completed, stopped, failed or interrupted
    (the job ended without a word: killed, or the machine went down)."""

    repo_id: str
    folder: str
    kind: str
    private: bool
    status: str
    message: str = ""
    url: str = ""
    done_bytes: int = 0
    total_bytes: int = 0

    @property
    def resumable(self) -> bool:
        return self.status in ("stopped", "failed", "interrupted")

    def args(self) -> tuple[str, ...]:
        """The command line that resumes (or repeats) this push."""
        return push_args(self.folder, self.repo_id, public=not self.private, kind=self.kind)


def events_path(run: Run) -> Path:
    return run.exports_dir / EVENTS_FILE


def last_push(run: Run) -> Optional[PushRecord]:
    """The newest push attempt recorded for ``run``, or None when it was never pushed."""
    events = read_events(events_path(run))
    start = max((i for i, e in enumerate(events) if e.get("type") == "push"), default=None)
    if start is None:
        return None
    hello = next((e for e in reversed(events[:start]) if e.get("type") == "hello"), {})
    plan = events[start]
    after = events[start + 1:]
    done = next((e for e in after if e.get("type") == "done"), None)
    pushed = next((e for e in after if e.get("type") == "pushed"), {})
    progress = [e for e in after if e.get("type") == "progress" and e.get("unit") == "bytes"]
    if done is not None:
        status, message = done.get("status", "failed"), done.get("message", "")
    elif hello.get("pid") and pid_alive(int(hello["pid"]), hello.get("pid_started")):
        status, message = "running", ""
    else:
        status, message = "interrupted", "The upload stopped without finishing (killed, or the computer went down)."
    return PushRecord(plan["repo_id"], plan["folder"], plan["kind"], bool(plan["private"]), status, message,
                      pushed.get("url", ""), progress[-1]["current"] if progress else 0, int(plan.get("bytes", 0)))
