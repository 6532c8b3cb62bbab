"""Where the studio keeps things: its home (settings, runs) and the shipped resources.

The home folder comes from platformdirs (the platform's conventional data folder) and can be
moved with the STUDIO_HOME environment variable, which the tests always set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def studio_home() -> Path:
    env = os.environ.get("STUDIO_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        from platformdirs import user_data_dir

        home = Path(user_data_dir("studio", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home


def runs_root() -> Path:
    root = studio_home() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def resources_dir() -> Path:
    """The resources folder: next to the package from source, inside the bundle when frozen."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def demo_model_dir() -> Path:
    return resources_dir() / "demo" / "model"


def demo_dataset_path() -> Path:
    return resources_dir() / "demo" / "dataset.jsonl"
