"""Full training state beside each checkpoint, and putting it back, so a killed run can continue.

A checkpoint (``RUN_DIR/checkpoints/step-N/``, layout in studio/core/checkpoints.py) holds what
an uninterrupted run would carry from step N to N+1: the trainable weights (in the method's own
save format, exportable like the final adapter), optimizer, LR scheduler, loss scaler, the RNG
streams (Python, NumPy, torch CPU and CUDA: dropout after a resume draws what it would have
drawn) and the method's own state (LISA's layer sampler, AdaLoRA's budget). The data position
needs no state: the Batcher's order is a function of seed and epoch, so step N is enough.

Writing is atomic (``step-N.tmp``, fsync, rename), and the newest ``KEEP_LAST`` checkpoints are
kept. A failed save (a full disk, above all) is a warning, never the end of the run: the folder
being written is removed and the previous checkpoint stays the one a resume picks.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from studio.core.checkpoints import (KEEP_LAST, RESUME_FILE, STATE_FILE, Checkpoint, checkpoint_dir, config_hash,
                                     latest_checkpoint, list_checkpoints)
from studio.worker.errors import WorkerError
from studio.worker.saving import _umask_permissions


@dataclass
class ResumePoint:
    """Where the loop starts: the first step it runs is ``step + 1``; counters continue from here."""

    step: int = 0
    tokens: int = 0  # useful tokens trained so far
    elapsed_s: float = 0.0  # training time so far (excludes loading)


class ResumeError(WorkerError):
    """A checkpoint that cannot continue this run; the message says why and what to do."""

    kind = "config"


class Checkpointer:
    """Saves and restores the complete training state of one run."""

    def __init__(self, *, run_dir: Path, cfg: Any, runtime: Any, model: Any, tokenizer: Any, optimizer: Any,
                 scheduler: Any, scaler: Any, total_steps: int, train_rows: int, reporter: Any = None,
                 keep_last: int = KEEP_LAST):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.runtime = runtime
        self.model = model
        self.tokenizer = tokenizer
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.total_steps = total_steps
        self.train_rows = train_rows
        self.reporter = reporter
        self.keep_last = keep_last
        self.config_hash = config_hash(cfg)

    # ---- saving -------------------------------------------------------------------------
    def save(self, step: int, point: Optional[ResumePoint] = None) -> Optional[Path]:
        """Write checkpoint ``step``; None (with a warning event) when it could not be written."""
        point = point or ResumePoint(step)
        target = checkpoint_dir(self.run_dir, step)
        tmp = target.with_name(target.name + ".tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self._write(tmp, step, point)
            _umask_permissions(tmp)  # a checkpoint is exportable like the adapter: same file modes
            _fsync_tree(tmp)
            if target.exists():  # the same step from an earlier attempt of this run
                old = target.with_name(target.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except Exception as e:  # noqa: BLE001 - a checkpoint that fails must not end the run
            shutil.rmtree(tmp, ignore_errors=True)
            self._warn_failed(step, e)
            return None
        self.prune()
        return target

    def _write(self, folder: Path, step: int, point: ResumePoint) -> None:
        import torch

        self.runtime.save(self.model, folder)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder)
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "runtime": self.runtime.resume_state(self.model),
        }
        torch.save(state, folder / STATE_FILE)
        meta = {"step": step, "total_steps": self.total_steps, "method": self.cfg.method.name}
        (folder / "training_state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        info = {"step": step, "total_steps": self.total_steps, "config_hash": self.config_hash,
                "train_rows": self.train_rows, "tokens": point.tokens, "elapsed_s": round(point.elapsed_s, 3),
                "method": self.cfg.method.name, "saved_at": time.time()}
        # Written last: a folder without a readable resume.json is never picked (see core.checkpoints).
        (folder / RESUME_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")

    def _warn_failed(self, step: int, exc: BaseException) -> None:
        full = _is_disk_full(exc)
        previous = latest_checkpoint(self.run_dir)
        fallback = (f"a resume would continue from step {previous.step}" if previous
                    else "there is no earlier checkpoint to resume from")
        why = "the disk is full" if full else f"{type(exc).__name__}: {exc}"
        message = f"Could not save the checkpoint at step {step} ({why}); training continues and {fallback}."
        if full:
            message += " Free some disk space so the next checkpoint and the final adapter can be saved."
        if self.reporter is not None:
            self.reporter.log(traceback.format_exc().rstrip())
            self.reporter.emit("warning", message=message, step=step, kind="disk" if full else "checkpoint")

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep_last`` complete checkpoints and stale half-written folders."""
        removed: list[Path] = []
        found = list_checkpoints(self.run_dir)
        for old in found[:-self.keep_last] if self.keep_last > 0 else found:
            shutil.rmtree(old.path, ignore_errors=True)
            removed.append(old.path)
        root = self.run_dir / "checkpoints"
        for stale in list(root.glob("step-*.tmp")) + list(root.glob("step-*.old")):
            shutil.rmtree(stale, ignore_errors=True)
        return removed

    # ---- restoring ----------------------------------------------------------------------
    def check(self, ckpt: Checkpoint) -> None:
        """ResumeError when the checkpoint does not belong to this run as it is configured now."""
        info = ckpt.info
        if info.get("config_hash") != self.config_hash:
            raise ResumeError(f"config.yaml changed since the checkpoint at step {ckpt.step} was saved; resuming "
                              "would mix two configurations. Start a new run with the changed settings instead.")
        same_rows = info.get("train_rows") in (None, self.train_rows)
        if not same_rows or info.get("total_steps") not in (None, self.total_steps):
            raise ResumeError(f"the training data changed since the checkpoint at step {ckpt.step} was saved "
                              f"({info.get('train_rows')} training rows then, {self.train_rows} now); the order of "
                              "examples would no longer match. Start a new run on the changed data instead.")
        if ckpt.step >= self.total_steps:
            raise ResumeError(f"the checkpoint at step {ckpt.step} is the run's last step; there is nothing to resume.")

    def restore(self, ckpt: Optional[Checkpoint] = None) -> ResumePoint:
        """Load the newest complete checkpoint (or ``ckpt``) into model, optimizer, scheduler, scaler and RNGs.

        Call it last before the loop starts: it sets the RNG streams to where the saved run was.
        """
        import torch

        ckpt = ckpt or latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise ResumeError("this run saved no checkpoint, so it cannot be resumed; set 'Checkpoint every' > 0 "
                              "for the next run.")
        self.check(ckpt)
        state = torch.load(ckpt.path / STATE_FILE, map_location="cpu", weights_only=False)
        self.runtime.load_for_resume(self.model, ckpt.path)
        self.runtime.load_resume_state(self.model, state.get("runtime") or {})
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        info = ckpt.info
        return ResumePoint(ckpt.step, int(info.get("tokens") or 0), float(info.get("elapsed_s") or 0.0))


# ---- RNG streams ----------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover - numpy comes with torch
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        # A resume on a machine with fewer GPUs restores the ones it has.
        torch.cuda.set_rng_state_all(list(cuda)[:torch.cuda.device_count()])


# ---- durability -------------------------------------------------------------------------------
def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library wrapped it (torch.save raises RuntimeError 'file write failed')."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return True
        text = str(exc).lower()
        if "no space left" in text or "disk quota" in text or "file write failed" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
