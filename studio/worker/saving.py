"""Write trained weights so that a crash mid-save never destroys the last good copy.

Everything is written into a sibling ``.tmp`` folder first and renamed into place only when it is
complete; the previous copy is removed only after that. Files get the ordinary permissions the
user's umask gives (0644 under the usual 022): some writers (safetensors) create theirs 0600, which
would make an exported adapter unreadable to anyone else sharing it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable


def save_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    old = target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        _umask_permissions(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _current_umask() -> int:
    """The process umask, read without changing it where Linux says it (os.umask can only set)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _umask_permissions(folder: Path) -> None:
    """Give every file and folder under ``folder`` the mode a plain ``open()``/``mkdir`` would."""
    mask = _current_umask()
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def save_trained(runtime: Any, model: Any, tokenizer: Any, target: Path, meta: dict[str, Any]) -> Path:
    """The method's weights (PEFT format for adapters), the tokenizer and a small training record."""

    def write(folder: Path) -> None:
        runtime.save(model, folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        (folder / "training_state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    return save_atomically(target, write)
