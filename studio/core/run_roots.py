"""The folders that hold runs: the studio's own runs folder plus every output folder a run used.

A run written to a custom output folder (``output_dir`` in its config, ``studio train
--output-dir``) must still appear in the history, in `studio runs` and in the GUI, and be
re-attached after a restart. ``RunStore.create`` remembers such folders in ``run_roots.json`` in
the studio home; the GUI and the CLI list runs from every folder remembered there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

from studio.core.paths import runs_root, studio_home

if TYPE_CHECKING:  # runs imports this module
    from studio.core.runs import Run

FILE = "run_roots.json"


def _path() -> Path:
    return studio_home() / FILE


def remember_root(folder: Path) -> None:
    """Add a runs folder to the remembered ones (the default runs folder needs no remembering)."""
    folder = Path(folder).expanduser().resolve()
    if folder == runs_root().resolve():
        return
    roots = _read()
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


def all_runs(default: Optional[Path] = None, roots: Optional[Iterable[Path]] = None) -> list["Run"]:
    """The runs of every known folder (or only of ``roots``), newest first by folder name."""
    from studio.core.runs import RunStore

    runs = [r for root in (known_roots(default) if roots is None else roots) for r in RunStore(root).list()]
    return sorted(runs, key=lambda r: r.path.name, reverse=True)


def find_run(ref: str, default: Optional[Path] = None) -> "Run":
    """A run folder, or a run id (its folder's name) in any known folder; FileNotFoundError if none."""
    from studio.core.runs import CONFIG_FILE, Run, RunStore

    path = Path(ref).expanduser()
    if (path / CONFIG_FILE).exists():
        return Run(path.resolve())
    for root in known_roots(default):
        if (Path(root) / ref / CONFIG_FILE).exists():
            return RunStore(root).get(ref)
    raise FileNotFoundError(f"no run {ref!r} in {', '.join(str(r) for r in known_roots(default))}")


def active_runs(default: Optional[Path] = None) -> list["Run"]:
    """Runs in any known folder whose worker is still alive (to re-attach to); dead ones get reconciled."""
    return [r for r in all_runs(default) if r.reconcile().live]


def _read() -> list[str]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []
