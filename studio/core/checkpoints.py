"""Resumable checkpoints on disk: which exist, which is newest, and whether a run can be resumed.

A checkpoint is ``RUN_DIR/checkpoints/step-N/``: the method's trained weights (the same format
as the final adapter, so it can be exported too), the tokenizer, ``trainer_state.pt`` (optimizer,
LR scheduler, loss scaler, RNG and method state, written by studio/worker/resume.py) and
``resume.json``, written last. The worker writes the folder as ``step-N.tmp`` and renames it only
once everything is on disk, so a folder named ``step-N`` holding a readable ``resume.json`` is
complete; anything else (a ``.tmp`` left by a kill mid-save, a torn file) is ignored.

This module reads only JSON and file names: the GUI and the CLI ask it without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from studio.core.runs import CHECKPOINTS_DIR, Run

RESUME_FILE = "resume.json"
STATE_FILE = "trainer_state.pt"
KEEP_LAST = 2  # complete checkpoints kept; older ones are deleted once a newer one is on disk
_NAME = re.compile(r"^step-(\d+)$")
# Fields that change neither the math nor the data order: a run may be resumed across them.
_NOT_HASHED = ("name", "output_dir")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    info: dict[str, Any]

    @property
    def total_steps(self) -> Optional[int]:
        value = self.info.get("total_steps")
        return int(value) if isinstance(value, int) else None


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step}"


def config_hash(cfg: Any) -> str:
    """A fingerprint of everything in the RunConfig that shapes training.

    Defaults are left out so that a newer studio adding fields (with defaults) does not make old
    runs unresumable; the method's name is added back because it is the union's discriminator
    (a default of its own class, so ``exclude_defaults`` would drop it).
    """
    dump = cfg.model_dump(mode="json", exclude_defaults=True)
    for key in _NOT_HASHED:
        dump.pop(key, None)
    dump["method_name"] = cfg.method.name
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def list_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    found: list[Checkpoint] = []
    try:
        entries = list(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        m = _NAME.match(entry.name)
        if not m or not entry.is_dir():
            continue
        info = _read_info(entry / RESUME_FILE)
        if info is None or info.get("step") != int(m.group(1)) or not (entry / STATE_FILE).is_file():
            continue
        found.append(Checkpoint(entry, int(m.group(1)), info))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(run_dir: Path) -> Optional[Checkpoint]:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _read_info(path: Path) -> Optional[dict[str, Any]]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("step"), int) else None


def resume_problem(run: Run) -> str:
    """Why this run cannot be resumed, in words for the user; "" when it can."""
    from studio.core.config import ConfigError, RunConfig

    if not run.config_path.exists():
        return f"{run.path} is not a run folder (no config.yaml)."
    state = run.reconcile()
    if state.live:
        return "This run is still training; there is nothing to resume."
    if state == "completed":
        return "This run finished already; there is nothing to resume. Start a new run to train longer."
    try:
        cfg = RunConfig.load(run.config_path)
    except (ConfigError, OSError, ValueError) as e:
        return f"This run's config.yaml cannot be read: {e}"
    ckpt = latest_checkpoint(run.path)
    if ckpt is None:
        reason = no_checkpoint_reason(cfg)
        return reason[0].upper() + reason[1:]
    if ckpt.info.get("config_hash") != config_hash(cfg):
        return (f"config.yaml changed since the checkpoint at step {ckpt.step} was saved; resuming would mix two "
                "configurations. Start a new run with the changed settings instead.")
    total = ckpt.total_steps
    if total is not None and ckpt.step >= total:
        return "This run's last checkpoint is its final step; there is nothing left to train."
    return ""


def no_checkpoint_reason(cfg: Any) -> str:
    """Why a run has nothing to resume from, given how often it was set to save."""
    t = cfg.training
    if t.save_steps <= 0 and t.save_minutes <= 0:
        return ("this run saved no checkpoint because checkpoints were off; set 'Checkpoint every' or 'Checkpoint "
                "minutes' above 0 (Method page, Logging and checkpoints) for the next run.")
    every = " or ".join(x for x in (f"every {t.save_steps} steps" if t.save_steps > 0 else "",
                                     f"every {t.save_minutes:g} minutes" if t.save_minutes > 0 else "") if x)
    return (f"this run ended before its first checkpoint (one is saved {every}), so there is nothing to resume "
            "from; start it again.")



def describe(run: Run) -> str:
    """One line for the GUI and CLI: the step a resume would continue from."""
    ckpt = latest_checkpoint(run.path)
    if ckpt is None:
        return ""
    total = f" of {ckpt.total_steps}" if ckpt.total_steps else ""
    return f"Continues from the checkpoint at step {ckpt.step}{total}."
