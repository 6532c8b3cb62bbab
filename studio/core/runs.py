"""RunStore: run directories on disk, the durable record of every run.

A run directory holds::

    config.yaml      the RunConfig the worker was given
    status.json      state, pid, times, final message (written by the worker; GUI marks kills)
    events.jsonl     every protocol event, appended as it happens
    worker.log       everything else the worker printed
    stop.request     present when a graceful stop was asked for
    adapter/         the final adapter (PEFT format) or trained weights
    checkpoints/     intermediate checkpoints
    exports/         exported adapters / merged models

Because everything is on disk, history, crash recovery and re-attaching to a run that outlived
its GUI need no live process.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from studio.core.config import RunConfig
from studio.core.paths import runs_root
from studio.core.protocol import read_events
from studio.core.run_roots import remember_root



class RunState(str, Enum):
    """The ``state`` in status.json. A str, so it compares with and serialises as its value."""

    CREATED = "created"
    RUNNING = "running"  # a worker is (or was last seen) training
    STOPPING = "stopping"  # a graceful stop was asked for
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    KILLED = "killed"  # the GUI or CLI had to kill the worker

    def __str__(self) -> str:
        return self.value

    @property
    def live(self) -> bool:
        """A worker should be alive (the run is being trained or stopped)."""
        return self in LIVE_STATES

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @classmethod
    def of(cls, value: object) -> "RunState":
        """The state a status.json value names; an unknown value reads as CREATED."""
        try:
            return cls(value)
        except ValueError:
            return cls.CREATED


LIVE_STATES = frozenset({RunState.RUNNING, RunState.STOPPING})
ACTIVE_STATES = frozenset({RunState.CREATED, *LIVE_STATES})
FINAL_STATES = frozenset({RunState.COMPLETED, RunState.STOPPED, RunState.FAILED, RunState.KILLED})

CONFIG_FILE = "config.yaml"
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "worker.log"
STOP_FILE = "stop.request"
ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
EXPORTS_DIR = "exports"


@dataclass
class Run:
    """A view of one run directory. Reads are cheap and always come from disk."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def stop_path(self) -> Path:
        return self.path / STOP_FILE

    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER_DIR

    @property
    def exports_dir(self) -> Path:
        return self.path / EXPORTS_DIR

    def config(self) -> RunConfig:
        return RunConfig.load(self.config_path)

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / STATUS_FILE).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "created"}

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into status.json atomically (write a temp file, then rename)."""
        status = self.status()
        status.update(fields)
        tmp = self.path / (STATUS_FILE + ".tmp")
        tmp.write_text(json.dumps(status, indent=1), encoding="utf-8")
        os.replace(tmp, self.path / STATUS_FILE)
        return status

    @property
    def state(self) -> RunState:
        return RunState.of(self.status().get("state"))

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.events_path)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64_000))
                text = f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def request_stop(self) -> None:
        self.stop_path.write_text(str(time.time()), encoding="utf-8")

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def clear_stale_stop(self, before: float) -> bool:
        """Remove a stop request written before ``before`` (an earlier attempt's Stop); True if one was.

        A resumed run reuses the folder, so the Stop that ended its previous attempt must not end
        this one before its first step. A request written after ``before`` is this attempt's own.
        """
        try:
            written = self.stop_path.stat().st_mtime
        except OSError:
            return False
        if written >= before:
            return False
        try:
            self.stop_path.unlink()
        except OSError:
            return False
        return True

    def worker_alive(self) -> bool:
        """Is the worker process recorded in status.json still running (that process, not a reuse of its pid)?"""
        status = self.status()
        pid = status.get("pid")
        return bool(pid) and pid_alive(int(pid), status.get("pid_started"))

    def reconcile(self) -> RunState:
        """Mark a run whose worker died without saying so as failed; returns the state.

        Never raises for a full or read-only disk: the state is then returned as it is on disk
        ('failed' for a dead worker) without rewriting status.json, so listing runs still works.
        """
        state = self.state
        if state.live and not self.worker_alive():
            tail = self.log_tail(8)
            try:
                self.write_status(state="failed", ended=time.time(),
                                  message="The worker stopped without finishing (killed or crashed)."
                                          + (f" Last log lines:\n{tail}" if tail else ""))
            except OSError:
                pass  # a full disk: the record says 'running' until there is room, the answer is still 'failed'
            self._remove_partial_checkpoints()
            return RunState.FAILED
        return state

    def _remove_partial_checkpoints(self) -> None:
        """Half-written ``step-N.tmp`` folders of a dead worker: never resumable, only taking space."""
        import shutil

        root = self.path / CHECKPOINTS_DIR
        for leftover in list(root.glob("step-*.tmp")) + list(root.glob("step-*.old")):
            shutil.rmtree(leftover, ignore_errors=True)


class RunStore:
    """All runs under one root folder, newest first."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root).expanduser().resolve() if root else runs_root()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_config(cls, config: RunConfig, default: Optional[Path] = None) -> "RunStore":
        """Where ``config``'s runs go: its ``output_dir``, else ``default`` (else the studio's runs folder)."""
        return cls(Path(config.output_dir).expanduser() if config.output_dir else default)

    def create(self, config: RunConfig) -> Run:
        """A new run folder holding ``config``; a folder the config names is remembered (run_roots)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", config.name).strip("-") or "run"
        path = self.root / f"{stamp}-{slug}"
        n = 1
        while True:  # mkdir is the test: two runs created in the same second never share a folder
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                n += 1
                path = self.root / f"{stamp}-{slug}-{n}"
        run = Run(path)
        config.with_absolute_paths().save(run.config_path)
        run.write_status(state=RunState.CREATED, created=time.time(), name=config.name)
        if config.output_dir:  # listed by the GUI and `studio runs` from now on, wherever they were started
            remember_root(self.root)
        return run

    def list(self) -> list[Run]:
        runs = [Run(p) for p in self.root.iterdir() if (p / CONFIG_FILE).exists()]
        return sorted(runs, key=lambda r: r.path.name, reverse=True)

    def get(self, run_id: str) -> Run:
        path = self.root / run_id
        if not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(f"no run {run_id!r} in {self.root}")
        return Run(path)

    def active(self) -> list[Run]:
        """Runs whose worker is still alive (to re-attach to); dead ones get reconciled."""
        return [r for r in self.list() if r.reconcile().live]


def process_started(pid: int) -> Optional[float]:
    """When process ``pid`` started (seconds since the epoch), or None if there is none."""
    try:
        import psutil

        return round(psutil.Process(pid).create_time(), 2)
    except Exception:
        return None


def own_start_time() -> float:
    """When this process started, on the wall clock, to ~10 ms (Linux; elsewhere: now).

    psutil's create_time adds clock ticks to a boot time rounded to whole seconds, so it can read
    up to a second early; /proc's uptime and this process's start ticks give the age exactly.
    """
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


# psutil's start times come from clock ticks since boot: the same process reads alike to ~10 ms.
_START_TOLERANCE_S = 1.0


def pid_alive(pid: int, started: Optional[float] = None) -> bool:
    """Is ``pid`` a live process, and (when ``started`` is known) the very one that started then?

    Pids are reused: a killed worker's pid may belong to another program an hour later, so a
    record that knows its process's start time only accepts the process with that start time.
    """
    if pid <= 0:
        return False
    try:
        import psutil

        p = psutil.Process(pid)
        if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - float(started)) <= _START_TOLERANCE_S
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    except Exception:
        return False
