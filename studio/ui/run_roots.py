"""The folders that hold runs: the studio's own runs folder plus every output folder a run used.

A run written to a custom output folder must still appear in the history and be re-attached
after a restart, so the GUI remembers those folders in ``run_roots.json`` in the studio home.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from studio.core.paths import runs_root, studio_home

FILE = "run_roots.json"


def _path() -> Path:
    return studio_home() / FILE


def remember_root(folder: Path) -> None:
    roots = _read()
    folder = Path(folder).expanduser().resolve()
    if str(folder) not in roots:
        roots.append(str(folder))
        try:
            _path().write_text(json.dumps(roots, indent=1), encoding="utf-8")
        except OSError:
            pass  # history of that folder is lost, the run itself is not


def known_roots(default: Optional[Path] = None) -> list[Path]:
    """The default runs folder first, then remembered folders that still exist."""
    first = Path(default) if default else runs_root()
    out = [first]
    for raw in _read():
        p = Path(raw)
        if p.is_dir() and p.resolve() != first.resolve() and p not in out:
            out.append(p)
    return out


def _read() -> list[str]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []
