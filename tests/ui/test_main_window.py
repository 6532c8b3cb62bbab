"""The shell: navigation, header, status bar, menus, error hook, startup time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from studio.ui.main_window import PAGES

ROOT = Path(__file__).resolve().parents[2]


def test_sidebar_lists_pages_that_exist_and_navigates(qtbot, window):
    w = window(build_all=False)
    keys = list(w._nav)
    assert keys[:1] == ["model"] and {"method", "train", "runs", "export"} <= set(keys)
    for key in keys:
        spec = next(p for p in PAGES if p[0] == key)
        w._nav[key].click()
        assert w.current_page_key() == key
        assert w.header_title.text() == spec[1]
        page = w.pages[key]
        assert type(page).__name__ == spec[5]


def test_data_page_is_hosted_when_it_exists(qtbot, window):
    import importlib.util

    w = window(build_all=False)
    exists = importlib.util.find_spec("studio.ui.pages.data.page") is not None
    assert ("data" in w._nav) == exists


def test_remaining_pages_build_after_show(qtbot, window):
    w = window(build_all=False)
    assert set(w.pages) == {"model"}
    w.build_remaining_pages()
    qtbot.waitUntil(lambda: set(w.pages) == set(w._specs), timeout=20_000)


def test_status_bar_says_no_gpu(qtbot, window):
    w = window(build_all=False)
    w.gpu_monitor.poll()
    assert w.gpu_status.text() == "No NVIDIA GPU — training on CPU"


def test_status_bar_shows_a_gpu(qtbot, window):
    from studio.core import gpu

    gpu.use_fake([gpu.GpuState(0, "NVIDIA H100", 12 * 2**30, 80 * 2**30, 97)])
    w = window(build_all=False)
    w.gpu_monitor.poll()
    assert "NVIDIA H100" in w.gpu_status.text() and "97% busy" in w.gpu_status.text()


def test_help_menu_has_about(qtbot, window):
    w = window(build_all=False)
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    actions = [a.text() for a in menus["Help"].actions()]
    assert "About" in actions


def test_about_dialog(qtbot):
    from studio.ui.dialogs.about import AboutDialog

    d = AboutDialog()
    qtbot.addWidget(d)
    assert d.windowTitle() == "About the studio"


def test_excepthook_logs_and_shows_a_dialog(qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QApplication

    from studio import app as studio_app
    from studio.core.paths import studio_home
    from studio.ui.dialogs import error_dialog

    shown = []
    monkeypatch.setattr(error_dialog.ErrorDialog, "exec", lambda self: shown.append(self.details.toPlainText()))
    old = sys.excepthook
    try:
        studio_app._install_excepthook(QApplication.instance())
        try:
            raise ValueError("boom for the test")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = old
    assert shown and "boom for the test" in shown[0]
    assert "boom for the test" in (studio_home() / "logs" / "studio.log").read_text()


def test_gui_cold_start_is_quick(tmp_path):
    """`python -m studio` shows its window quickly (measured from process start)."""
    env = dict(os.environ, STUDIO_HOME=str(tmp_path), STUDIO_STARTUP_REPORT="1", STUDIO_EXIT_AFTER_STARTUP="1",
               PYTHONPATH=str(ROOT))
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "studio"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    wall = time.time() - t0
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("startup:"))
    shown = float(line.split()[3])
    print(f"window shown after {shown:.2f} s; process wall time {wall:.2f} s")
    assert shown < 4.0  # ~1.3 s on an idle 2-core machine; generous for a loaded CI box
