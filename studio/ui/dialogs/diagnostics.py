"""Help → Diagnostics and the first-launch pre-flight.

Both show ``studio.core.diagnostics.collect_report``. The torch-side facts (does CUDA work in this
build, does bitsandbytes) come from a child process (``studio --diagnose --json``) so the GUI never
imports torch and stays responsive while it loads. The dialog shows the rest at once and fills in
the runtime section when the child answers; Copy puts the plain-text report on the clipboard.

The pre-flight runs the same probe once per installed version and speaks up only when the report
lists real problems (a GPU this build cannot use, a full disk, missing demo files).
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, Optional

from PySide6.QtCore import QObject, QProcess, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QMessageBox, QPushButton, QTextBrowser,
                               QVBoxLayout, QWidget)

from studio.core import diagnostics
from studio.core.diagnostics import Report

PROBE_TIMEOUT_MS = 180_000  # a cold start of torch + CUDA init from a slow disk can take a minute
_STATUS_COLOURS = {"ok": "#2e7d32", "warn": "#b26a00", "fail": "#c62828", "info": ""}


class RuntimeProbe(QObject):
    """Runs ``studio --diagnose --json`` in a child process; emits its dict (or an error dict)."""

    sig_finished = Signal(dict)

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._process = QProcess(self)
        self._process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self._process.finished.connect(self._on_process_finished)
        self._process.errorOccurred.connect(self._on_process_error)
        self._timer = QTimer(self, singleShot=True, interval=PROBE_TIMEOUT_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._done = False

    def start(self, low_priority: bool = False) -> None:
        """``low_priority``: the child gets the CPU only when the studio does not need it (nice 10)."""
        program, *args = diagnostics.probe_command()
        self._done = False
        self._timer.start()
        self._process.start(program, args)
        if low_priority and hasattr(os, "setpriority") and self._process.waitForStarted(5000):
            try:
                os.setpriority(os.PRIO_PROCESS, self._process.processId(), 10)
            except OSError:
                pass

    def _on_process_finished(self, code: int, _status) -> None:
        out = bytes(self._process.readAllStandardOutput()).decode(errors="replace")
        err = bytes(self._process.readAllStandardError()).decode(errors="replace")
        for line in reversed(out.splitlines()):  # libraries may print before the JSON line
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict):
                return self._finish(result)
        tail = "\n".join((err or out).strip().splitlines()[-5:])
        self._finish({"torch_error": f"the check process exited with {code}: {tail or 'no output'}"})

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finish({"torch_error": f"could not start {self._process.program()}: {self._process.errorString()}"})

    def _on_timer_timeout(self) -> None:
        self._process.kill()
        self._finish({"torch_error": f"the check did not answer within {PROBE_TIMEOUT_MS // 1000} s"})

    def _finish(self, result: dict[str, Any]) -> None:
        if self._done:
            return
        self._done = True
        self._timer.stop()
        self.sig_finished.emit(result)


class DiagnosticsDialog(QDialog):
    """The report, live: static facts at once, the runtime section when the probe answers."""

    def __init__(self, parent: Optional[QWidget] = None, runtime: Optional[dict[str, Any]] = None):
        super().__init__(parent)
        self.setWindowTitle("Diagnostics")
        self.resize(720, 640)
        self._view = QTextBrowser(self)
        self._view.setOpenLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self._copy_button = QPushButton("Copy for a bug report", self)
        self._copy_button.setToolTip("Copy the whole report as plain text to the clipboard")
        buttons.addButton(self._copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self._copy_button.clicked.connect(self._on_copy_clicked)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self._view)
        layout.addWidget(buttons)
        self._probe: Optional[RuntimeProbe] = None
        self._show(diagnostics.collect_report(runtime))
        if runtime is None:
            self._probe = RuntimeProbe(self)
            self._probe.sig_finished.connect(self._on_probe_finished)
            self._probe.start()

    @property
    def report(self) -> Report:
        return self._report

    def report_text(self) -> str:
        return self._report.to_text()

    def _show(self, report: Report) -> None:
        self._report = report
        self._view.setHtml(report_html(report))

    def _on_probe_finished(self, runtime: dict) -> None:
        self._show(diagnostics.collect_report(runtime))

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())
        self._copy_button.setText("Copied")
        # the dialog as context: the timer dies with it if it is closed within the 1.5 s
        QTimer.singleShot(1500, self, self._reset_copy_label)

    def _reset_copy_label(self) -> None:
        self._copy_button.setText("Copy for a bug report")


def report_html(report: Report) -> str:
    """The report as simple HTML: problems first, then one table per section."""
    parts = []
    if report.problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in report.problems)
        parts.append(f"<h3 style='color:{_STATUS_COLOURS['fail']}'>Problems</h3><ul>{items}</ul>")
    for section in report.sections:
        rows = []
        for item in section.items:
            colour = _STATUS_COLOURS[item.status]
            value = html.escape(item.value).replace("\n", "<br>")
            style = f" style='color:{colour}'" if colour else ""
            rows.append(f"<tr><td style='padding-right:16px'><b>{html.escape(item.label)}</b></td>"
                        f"<td{style}>{value}</td></tr>")
        parts.append(f"<h3>{html.escape(section.title)}</h3><table>{''.join(rows)}</table>")
    return "".join(parts)


class Preflight(QObject):
    """The once-per-version check at first launch; warns only when the report has problems."""

    sig_problems_found = Signal(object)  # Report
    sig_finished = Signal(object)  # Report, whether or not it found problems

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self._parent_widget = parent
        self._probe = RuntimeProbe(self)
        self._probe.sig_finished.connect(self._on_probe_finished)

    def start(self) -> None:
        self._probe.start(low_priority=True)  # nobody waits for it; the GUI must not

    def _on_probe_finished(self, runtime: dict) -> None:
        report = diagnostics.collect_report(runtime)
        diagnostics.record_preflight(report)
        self.sig_finished.emit(report)
        if report.problems:
            self.sig_problems_found.emit(report)


def start_preflight(parent: QWidget, *, warn: bool = True) -> Optional[Preflight]:
    """Start the pre-flight if it has not run for this version; None when it already has.

    With ``warn`` a found problem opens a warning box whose Details button opens the dialog.
    """
    if not diagnostics.preflight_due():
        return None
    preflight = Preflight(parent)
    if warn:
        preflight.sig_problems_found.connect(lambda report: show_problems(parent, report))
    preflight.start()
    return preflight


def show_problems(parent: Optional[QWidget], report: Report) -> QMessageBox:
    """A non-blocking warning listing the problems; its Diagnostics button opens the full report."""
    box = QMessageBox(QMessageBox.Icon.Warning, "The studio found problems on this machine",
                      "\n\n".join(report.problems), QMessageBox.StandardButton.Ok, parent)
    details = box.addButton("Diagnostics…", QMessageBox.ButtonRole.HelpRole)
    details.clicked.connect(lambda: DiagnosticsDialog(parent).open())
    box.open()
    return box
