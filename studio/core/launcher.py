"""Starting a worker process: the one launcher the GUI and the CLI share.

A worker is ``python -m studio --worker JOB RUN_DIR ...`` from source, or the frozen executable
with ``--worker ...``. It runs in its own session (so a run can outlive the window, and Ctrl-C in
a terminal reaches the CLI, which then asks the worker to stop), with the run folder as its working
directory, unbuffered UTF-8 output and stdout piped (stderr merged into it) as bytes. For a
training job the launcher clears a stop request left by an earlier attempt and records the
worker's pid and start time in status.json at once, so a GUI restarted in the next second still
finds it and a reused pid is never mistaken for it.

A chat worker is interactive: it reads JSON commands on stdin (studio.core.chat), so it is started
with ``interactive=True`` (stdin a pipe the caller writes). Chatting with a plain model has no run
folder: ``run`` is None and the worker starts in the studio's home folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from studio.core.diagnostics import app_command
from studio.core.runs import Run, RunState, process_started


def worker_command(job: str, run_dir: Optional[Path | str], *args: str) -> list[str]:
    """The command line of a worker for ``job`` on ``run_dir`` (None: a job on no run, e.g. chat --model)."""
    return app_command("--worker", job, *([] if run_dir is None else [str(run_dir)]), *args)


def worker_env() -> dict[str, str]:
    """Unbuffered UTF-8 output; from source, the child imports this very studio package."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    if not getattr(sys, "frozen", False):
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def spawn_worker(run: Optional[Run], job: str, *args: str, interactive: bool = False) -> subprocess.Popen:
    """Start the worker; its stdout (bytes, stderr merged) is the caller's to drain. Raises OSError.

    ``interactive``: the worker's stdin is a pipe for its commands (bytes, one JSON line each).
    """
    if job == "train" and run is not None:
        run.clear_stale_stop(before=time.time())
    kwargs: dict = {}
    if os.name == "nt":  # pragma: no cover - Windows has no sessions
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    if run is not None:
        cwd = run.path
    else:
        from studio.core.paths import studio_home

        cwd = studio_home()
    proc = subprocess.Popen(worker_command(job, run.path if run is not None else None, *args),
                            stdin=subprocess.PIPE if interactive else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=str(cwd), env=worker_env(), bufsize=0, **kwargs)
    if job == "train" and run is not None:
        try:
            run.write_status(state=RunState.RUNNING, pid=proc.pid, pid_started=process_started(proc.pid))
        except OSError:
            pass  # a full disk: the worker says so itself in a moment
    return proc
