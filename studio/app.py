"""The GUI entry: QApplication, theme, error handling, the main window, re-attaching live runs.

``STUDIO_STARTUP_REPORT=1`` prints the time from process start to the window being shown and
painted; ``STUDIO_EXIT_AFTER_STARTUP=1`` quits right after (both used to measure and smoke-test the
start; tools/first_paint.py measures the paint from screenshots of a real display).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Optional

PREFLIGHT_DELAY_MS = 4000  # the first-launch machine check (torch in a child) starts after the pages are built


def _process_age_s() -> float:
    """Seconds since this process started."""
    from studio.core.runs import own_start_time

    return time.time() - own_start_time()


def _install_excepthook(app) -> None:
    """Unexpected errors in GUI code: logged to the studio home and shown, never a silent crash."""
    from studio.core.paths import studio_home

    log_path = studio_home() / "logs" / "studio.log"
    showing = [False]

    def hook(exc_type, exc, tb):
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{details}\n")
        except OSError:
            pass
        sys.__stderr__.write(details)
        if showing[0] or issubclass(exc_type, KeyboardInterrupt):
            return
        showing[0] = True
        try:
            from studio.ui.dialogs.error_dialog import ErrorDialog

            ErrorDialog(f"{exc_type.__name__}: {exc}", details, str(log_path), app.activeWindow()).exec()
        finally:
            showing[0] = False

    sys.excepthook = hook


def _start_preflight(window) -> None:
    """The once-per-version machine check (packaging's diagnostics), when that module is installed."""
    try:
        from studio.ui.dialogs.diagnostics import start_preflight
    except ImportError:
        return
    window.preflight = start_preflight(window)  # kept referenced while its probe runs


def display_problem() -> str:
    """Why Qt could not open a window here (missing X11 libraries, no display), or "".

    Checked before the QApplication exists: when Qt's platform plugin fails to load, Qt aborts
    the process with a message that names the wrong package.
    """
    from pathlib import Path

    from PySide6.QtCore import QLibraryInfo

    from studio.core import display_libs

    return display_libs.display_problem(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))


def main(argv: Optional[list[str]] = None, config_path: Optional[str] = None) -> int:
    """Open the studio (on the run config at ``config_path``, if given); returns the exit status."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from studio import __version__

    if QApplication.instance() is None:
        problem = display_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1
    app = QApplication.instance() or QApplication([sys.argv[0], *(argv or [])])
    app.setApplicationName("Fine-tuning Studio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("studio")
    from studio.ui.theme import apply_theme

    apply_theme(app)
    _install_excepthook(app)
    from studio.ui.main_window import MainWindow

    window = MainWindow()
    if config_path:
        window.open_config(config_path)
    # Quit as soon as the window is closed. Qt's own quit-on-last-window is a posted event that
    # any window shown before it is handled cancels (a page built in the background used to show
    # a label as a window for an instant), which left a process without a window (issue #13).
    app.lastWindowClosed.connect(app.quit)
    window.show()
    shown_at = _process_age_s()

    def after_paint() -> None:
        if os.environ.get("STUDIO_STARTUP_REPORT"):
            print(f"startup: window shown {shown_at:.2f} s after process start; painted by "
                  f"{_process_age_s():.2f} s", flush=True)
        if os.environ.get("STUDIO_EXIT_AFTER_STARTUP"):
            app.quit()
            return
        window.reattach_live_runs()
        window.build_remaining_pages()
        # The machine check imports torch in a child process: after the pages, so it does not slow them.
        QTimer.singleShot(PREFLIGHT_DELAY_MS, window, lambda: _start_preflight(window))

    from studio.ui.startup import when_painted

    when_painted(window, after_paint)
    return app.exec()
