"""The GUI never imports torch, transformers or peft (checked in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, pkgutil, sys
import studio.ui, studio.app
from PySide6.QtWidgets import QApplication
app = QApplication([])
for m in pkgutil.walk_packages(studio.ui.__path__, "studio.ui."):
    importlib.import_module(m.name)
from studio.ui.main_window import MainWindow
w = MainWindow(build_all=True)
bad = sorted(n for n in ("torch", "transformers", "peft", "bitsandbytes") if n in sys.modules)
print("HEAVY:", ",".join(bad))
"""


def test_gui_does_not_import_torch(tmp_path):
    env = dict(os.environ, STUDIO_HOME=str(tmp_path), PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("HEAVY:"))
    assert line == "HEAVY: ", line
