"""The layers only point down, checked in fresh interpreters.

studio.core and studio.worker never pull in Qt; studio.core never imports torch at import time;
the GUI (studio.ui, studio.app) never imports torch, transformers or peft, so it starts fast and
a broken CUDA install can never stop it from opening. Modules that do not exist yet are skipped.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QT = ("PySide6", "pyqtgraph", "shiboken6")
ML = ("torch", "transformers", "peft")


def _modules(package: str) -> list[str]:
    base = ROOT.joinpath(*package.split("."))
    if not base.exists():
        return []
    if not (base / "__init__.py").exists():
        return [package] if base.with_suffix(".py").exists() else []
    names = [package]
    for info in pkgutil.walk_packages([str(base)], prefix=package + "."):
        names.append(info.name)
    return names


def _imported_after(modules: list[str]) -> dict:
    """Import the modules in a fresh interpreter; report import errors and the top-level packages loaded."""
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "errors = {}\n"
        "for m in mods:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        errors[m] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps({'loaded': sorted({k.split('.')[0] for k in sys.modules}), 'errors': errors}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def _check(package: str, forbidden: tuple[str, ...]) -> None:
    modules = _modules(package)
    if not modules:
        pytest.skip(f"{package} does not exist yet")
    report = _imported_after(modules)
    assert not report["errors"], report["errors"]
    leaked = sorted(set(forbidden) & set(report["loaded"]))
    assert not leaked, f"importing {package} pulls in {leaked}"


def test_core_imports_neither_qt_nor_torch():
    _check("studio.core", QT + ML)


def test_worker_never_imports_qt():
    _check("studio.worker", QT)


def test_cli_imports_no_qt_and_no_torch_at_import():
    _check("studio.cli", QT + ML)


def test_ui_never_imports_torch_transformers_or_peft():
    _check("studio.ui", ML)


def test_app_never_imports_torch_transformers_or_peft():
    if not (ROOT / "studio" / "app.py").exists():
        pytest.skip("studio.app does not exist yet")
    report = _imported_after(["studio.app"])
    assert not report["errors"], report["errors"]
    assert not set(ML) & set(report["loaded"])
