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
                                     latest_checkpoint, list_checkpoints, no_checkpoint_reason)
from studio.core.disk import free_space, is_disk_full
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
        full = is_disk_full(exc, self.run_dir)
        previous = latest_checkpoint(self.run_dir)
        fallback = (f"a resume would continue from step {previous.step}" if previous
                    else "there is no earlier checkpoint to resume from")
        room = free_space(self.run_dir)
        why = (f"the disk is full: {room}" if room else "the disk is full") if full else f"{type(exc).__name__}: {exc}"
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
        ckpt = ckpt or latest_checkpoint(self.run_dir)
        if ckpt is None:
            raise ResumeError(no_checkpoint_reason(self.cfg))
        self.check(ckpt)
        state = load_state(ckpt.path / STATE_FILE)
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


# ---- reading the state safely ------------------------------------------------------------------
class UnsafeCheckpointError(ResumeError):
    """A trainer_state.pt that asks to run code while loading; it is never loaded."""


def load_state(path: Path) -> dict[str, Any]:
    """``trainer_state.pt`` as tensors and plain values only; code in it is refused, never run.

    A run folder may come from anyone (a colleague's run, a downloaded example), and a pickle can
    call any function while it loads. PyTorch's weights-only unpickler builds tensors, numbers,
    strings and containers and nothing else; the one addition is NumPy's RNG key array as older
    studios wrote it (an array of uint32, rebuilt by NumPy, no code of the file's choosing).
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_rng_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(_refusal(path, e)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise ResumeError(f"{path} cannot be read ({type(e).__name__}: {str(e)[:200]}); the checkpoint is damaged. "
                          "Delete its folder so the run resumes from the one before, or start a new run.") from None
    if not isinstance(state, dict) or "optimizer" not in state or "rng" not in state:
        raise ResumeError(f"{path} is not a studio training state (no optimizer or random state in it); delete "
                          "that checkpoint folder so the run resumes from the one before, or start a new run.")
    return state


def _numpy_rng_globals() -> list[Any]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with torch
        return []
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _refusal(path: Path, exc: BaseException) -> str:
    import torch

    try:
        asked = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - the names are a courtesy; the refusal stands without them
        asked = []
    what = f" ({', '.join(asked[:4])})" if asked else ""
    return (f"Refused to load {path}: it holds code{what}, not only tensors, and loading it would run that code. "
            "The studio never writes such a file, so it was changed or comes from elsewhere. Do not resume this run "
            "unless you know where it came from; delete that checkpoint folder to resume from an earlier one, or "
            "start a new run.")


# ---- RNG streams ----------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """The RNG streams as tensors and plain values (loadable by the weights-only unpickler)."""
    import torch

    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {"python": (py_version, list(py_state), py_gauss), "torch": torch.get_rng_state()}
    try:
        import numpy as np

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = (str(name), [int(k) for k in keys], int(pos), int(has_gauss), float(cached))
    except ImportError:  # pragma: no cover - numpy comes with torch
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
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
