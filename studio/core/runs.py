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
from pathlib import Path
from typing import Any, Optional

from studio.core.config import RunConfig
from studio.core.paths import runs_root
from studio.core.protocol import read_events

ACTIVE_STATES = ("created", "running", "stopping")
FINAL_STATES = ("completed", "stopped", "failed", "killed")

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
    def state(self) -> str:
        return self.status().get("state", "created")

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

    def worker_alive(self) -> bool:
        """Is the worker process recorded in status.json still running?"""
        pid = self.status().get("pid")
        return bool(pid) and pid_alive(int(pid))

    def reconcile(self) -> str:
        """Mark a run whose worker died without saying so as failed; returns the state."""
        status = self.status()
        state = status.get("state", "created")
        if state in ("running", "stopping") and not self.worker_alive():
            tail = self.log_tail(8)
            self.write_status(state="failed", ended=time.time(),
                              message="The worker stopped without finishing (killed or crashed)."
                                      + (f" Last log lines:\n{tail}" if tail else ""))
            return "failed"
        return state


class RunStore:
    """All runs under one root folder, newest first."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root else runs_root()
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, config: RunConfig) -> Run:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", config.name).strip("-") or "run"
        path = self.root / f"{stamp}-{slug}"
        n = 1
        while path.exists():
            n += 1
            path = self.root / f"{stamp}-{slug}-{n}"
        path.mkdir(parents=True)
        run = Run(path)
        config.save(run.config_path)
        run.write_status(state="created", created=time.time(), name=config.name)
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
        return [r for r in self.list() if r.reconcile() in ("running", "stopping")]


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        import psutil

        p = psutil.Process(pid)
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    except Exception:
        return False
