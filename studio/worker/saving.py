"""Write trained weights so that a crash mid-save never destroys the last good copy.

Everything is written into a sibling ``.tmp`` folder first and renamed into place only when it is
complete; the previous copy is removed only after that.
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def save_trained(runtime: Any, model: Any, tokenizer: Any, target: Path, meta: dict[str, Any]) -> Path:
    """The method's weights (PEFT format for adapters), the tokenizer and a small training record."""

    def write(folder: Path) -> None:
        runtime.save(model, folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        (folder / "training_state.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    return save_atomically(target, write)
