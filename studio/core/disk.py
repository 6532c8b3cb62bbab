"""A full disk, recognised and described the same way by every command.

Writers wrap ENOSPC in their own errors (torch.save raises ``RuntimeError: [enforce fail at
inline_container.cc:...] unexpected pos ...`` or ``file write failed``; safetensors and HF datasets
their own), so ``is_disk_full`` looks through the exception chain, at the words, and finally at
the disk itself: a write that failed on a volume with almost nothing left failed because it was
full. ``free_space`` and ``disk_full_message`` phrase it for the user ("the disk is full (0.1 MB
free on /mnt/data)"). No torch, no Qt: the GUI, the CLI and the worker share it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional

# Below this much free space, a failed write is taken to be the disk's fault whatever the error says.
NEARLY_FULL_BYTES = 64 << 20
_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", -1), getattr(errno, "EFBIG", -1))
_FULL_WORDS = ("no space left", "disk quota", "file write failed", "unexpected pos", "enospc",
               "not enough space on the disk")


def existing_parent(path: Path | str) -> Path:
    """``path`` or the nearest folder above it that exists (a target not created yet)."""
    p = Path(path).expanduser()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def free_bytes(path: Path | str) -> Optional[int]:
    try:
        return shutil.disk_usage(existing_parent(path)).free
    except OSError:
        return None


def mount_point(path: Path | str) -> Path:
    """The root of the filesystem that holds ``path`` ('/mnt/data' for '/mnt/data/runs/x')."""
    p = existing_parent(path).resolve()
    while not os.path.ismount(p) and p.parent != p:
        p = p.parent
    return p


def human_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def free_space(path: Path | str) -> str:
    """'1.2 GB free on /data' (the filesystem holding ``path``), or '' when the disk cannot be asked."""
    free = free_bytes(path)
    if free is None:
        return ""
    return f"{human_bytes(free)} free on {mount_point(path)}"


def is_disk_full(exc: Optional[BaseException], path: Path | str | None = None) -> bool:
    """Did ``exc`` happen because the disk (of ``path``, when given) is full?"""
    seen: set[int] = set()
    cur = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _FULL_ERRNOS:
            return True
        text = str(cur).lower()
        if any(word in text for word in _FULL_WORDS):
            return True
        cur = cur.__cause__ or cur.__context__
    if exc is not None and path is not None and _a_write_failed(exc):
        free = free_bytes(path)
        return free is not None and free < NEARLY_FULL_BYTES
    return False


def _a_write_failed(exc: BaseException) -> bool:
    """An I/O error, or a library's error about writing or serialising (not any error at all)."""
    if isinstance(exc, OSError):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("write", "inline_container", "serializ", "save", "flush"))


def disk_full_message(path: Path | str, doing: str = "writing") -> str:
    """'The disk is full (0.0 MB free on /data) while writing /data/runs/x.'"""
    room = free_space(path)
    return f"The disk is full ({room}) while {doing} {path}." if room else f"The disk is full while {doing} {path}."
