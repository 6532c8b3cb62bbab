"""Help → Diagnostics and the first-launch pre-flight, offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication

from studio.core import diagnostics
from studio.ui.dialogs.diagnostics import DiagnosticsDialog, report_html, start_preflight

CPU_RUNTIME = {"torch": "2.13.0+cpu", "torch_cuda_build": None, "cuda_available": False,
               "bitsandbytes": {"installed": False}}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))


def test_dialog_shows_every_section_and_copies_plain_text(qtbot):
    dialog = DiagnosticsDialog(runtime=CPU_RUNTIME)
    qtbot.addWidget(dialog)
    shown = dialog._view.toPlainText()
    for title in diagnostics.SECTION_TITLES:
        assert title in shown
    dialog._copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied == dialog.report_text() and "[Training runtime]" in copied and "2.13.0+cpu" in copied
    assert dialog._copy_button.text() == "Copied"


def test_problems_are_listed_first_in_the_html():
    report = diagnostics.Report([diagnostics.Section("Studio", [diagnostics.Item("a", "<b>", "fail")])],
                                ["Disk <full>"])
    page = report_html(report)
    assert page.index("Problems") < page.index("Studio") and "Disk &lt;full&gt;" in page and "&lt;b&gt;" in page


def test_dialog_fills_in_the_runtime_from_a_child_process(qtbot):
    dialog = DiagnosticsDialog()
    qtbot.addWidget(dialog)
    assert "checking" in dialog._view.toPlainText()
    with qtbot.waitSignal(dialog._probe.sig_finished, timeout=120_000):
        pass
    text = dialog.report_text()
    assert "checking" not in text and "PyTorch" in text and "does not load" not in text


def test_preflight_runs_once_and_stays_quiet_without_problems(qtbot, monkeypatch):
    monkeypatch.setattr(diagnostics, "collect_report",
                        lambda runtime: diagnostics.Report([], []) if runtime else None)
    preflight = start_preflight(None, warn=True)
    assert preflight is not None
    found = []
    preflight.sig_problems_found.connect(found.append)
    with qtbot.waitSignal(preflight.sig_finished, timeout=120_000):
        pass
    assert found == [] and not diagnostics.preflight_due()
    assert start_preflight(None) is None
