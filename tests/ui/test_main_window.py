"""The shell: navigation, header, status bar, menus, error hook, startup time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from studio.ui.main_window import page_specs

ROOT = Path(__file__).resolve().parents[2]


def test_sidebar_lists_pages_that_exist_and_navigates(qtbot, window):
    w = window(build_all=False)
    keys = list(w._nav)
    assert keys[:1] == ["model"] and {"method", "train", "runs", "export"} <= set(keys)
    for key in keys:
        spec = next(p for p in page_specs() if p.key == key)
        w._nav[key].click()
        assert w.current_page_key() == key
        assert w.header_title.text() == spec.title and w.header_subtitle.text() == spec.subtitle
        page = w.pages[key]
        assert type(page).__name__ == spec.cls


def test_data_page_is_hosted_when_it_exists(qtbot, window):
    import importlib.util

    w = window(build_all=False)
    exists = importlib.util.find_spec("studio.ui.pages.data.page") is not None
    assert ("data" in w._nav) == exists


def test_remaining_pages_build_after_show(qtbot, window):
    w = window(build_all=False)
    assert set(w.pages) == {"model"}
    w.build_remaining_pages()
    qtbot.waitUntil(lambda: set(w.pages) == set(w.page_keys()), timeout=20_000)


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


def test_every_page_declares_itself_and_has_what_its_spec_promises():
    """The window knows pages only by their PageSpec and the optional methods of studio.ui.pages.spec."""
    import importlib

    for spec in page_specs():
        assert importlib.import_module(f"studio.ui.pages.{spec.key}").PAGE is spec
        cls = getattr(importlib.import_module(spec.module), spec.cls)
        if spec.run_actions:
            assert hasattr(cls, "run_action"), spec.key
        if spec.lists_runs:
            assert hasattr(cls, "refresh"), spec.key
        if hasattr(cls, "busy_work"):
            assert hasattr(cls, "kill_work") or (hasattr(cls, "stop_work") and hasattr(cls, "detach_work")), spec.key


def test_closing_during_an_export_asks_and_ends_it(qtbot, window, monkeypatch):
    from studio.ui.pages.spec import Work

    w = window()
    export = w.page("export")
    killed = []
    monkeypatch.setattr(export, "busy_work", lambda: Work.NONE if killed else Work.JOB)
    monkeypatch.setattr(export, "kill_work", lambda: killed.append(1))
    w.ask_cancel_jobs = lambda: False
    assert not w.close() and not killed  # "No": the export goes on, the window stays
    w.ask_cancel_jobs = lambda: True
    assert w.close() and killed == [1]
