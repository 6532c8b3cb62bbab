"""Work-arounds for known Qt for Python bugs, applied once when studio.ui is imported.

PySide6 6.12.0 returns ``True`` from ``SignalInstance.emit()`` without a reference of its own, so
every emit from Python lowers True's reference count by one; on Python < 3.12 (where True is not
immortal) the interpreter aborts after a few thousand emits ("bool_dealloc"). pyproject excludes
that version; if it is installed anyway, we hold enough extra references to True that a session
never runs out, topping them up from the GPU monitor's one-second tick.
"""

from __future__ import annotations

import sys

_PIN: list[bool] = []
_CHUNK = 1_000_000  # 8 MB of references; about a day of a chatty training run's emits


def emit_leaks_true() -> bool:
    if sys.version_info >= (3, 12):
        return False
    from PySide6 import __version__

    return __version__ == "6.12.0"


def top_up() -> None:
    """Keep True's reference count far from zero when the buggy PySide6 is in use."""
    if _BUGGY and sys.getrefcount(True) < _CHUNK:
        _PIN.extend([True] * _CHUNK)


_BUGGY = emit_leaks_true()
top_up()
