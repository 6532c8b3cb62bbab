"""MainWindow: assembles the sidebar, header, pages and status bar, and wires pages together.

Pages never talk to each other; every cross-page connection is made here, generically: each page
package declares a PageSpec (studio.ui.pages.spec: title, icon, what its constructor needs, which
run actions it performs) and the window connects the signals a page has. Only the first page is
built before the window shows; the others (the curve pages pull in pyqtgraph) are built right
after, one per event-loop turn, or at once when the user navigates to one.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QButtonGroup, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QScrollArea,
                               QSizePolicy, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from studio import __version__
from studio.core.paths import studio_home
from studio.core.run_roots import active_runs
from studio.core.runs import Run
from studio.ui.config_model import ConfigModel
from studio.ui.gpu_monitor import GpuMonitor, describe
from studio.ui.pages.spec import PageSpec, Work
from studio.ui.process import DEFAULT_STOP_TIMEOUT_S
from studio.ui.theme import icon, nav_icon
from studio.ui.widgets.wheel_guard import guard_fields

if TYPE_CHECKING:  # the model catalog is imported when the Model page is built, after the first paint
    from studio.core.models import ModelFacts

PAGE_PACKAGES = ("model", "data", "method", "planner", "train", "compare", "runs", "chat", "export")  # sidebar order
CLOSE_STOP, CLOSE_KEEP, CLOSE_CANCEL = "stop", "keep", "cancel"


def page_specs() -> list[PageSpec]:
    """The pages, in sidebar order, whose module is installed (each package's ``PAGE``)."""
    specs = [importlib.import_module(f"studio.ui.pages.{name}").PAGE for name in PAGE_PACKAGES]
    return [spec for spec in specs if _available(spec.module)]


def _import_plotting() -> None:
    import pyqtgraph  # noqa: F401  (warms the module cache; the pages import it again for free)


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class MainWindow(QMainWindow):
    def __init__(self, config_model: Optional[ConfigModel] = None, store_root: Optional[Path] = None,
                 stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S, build_all: bool = False):
        super().__init__()
        self.setWindowTitle("Fine-tuning Studio")
        self.config_model = config_model or ConfigModel(_initial_config())
        self.store_root = store_root
        self.stop_timeout_s = stop_timeout_s
        self.gpu_monitor = GpuMonitor(parent=self)
        self.pages: dict[str, QWidget] = {}
        self._holders: dict[str, QWidget] = {}
        self._specs = {spec.key: spec for spec in page_specs()}
        self._nav: dict[str, QToolButton] = {}
        self._model_facts: Optional["ModelFacts"] = None
        self._close_after_stop = False
        self._closed = False
        self._plot_import: Optional[threading.Thread] = None
        self._settings = QSettings(str(studio_home() / "window.ini"), QSettings.Format.IniFormat)

        central = QWidget()
        central.setObjectName("Central")
        root = QHBoxLayout(central)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        root.addWidget(self._build_sidebar())
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        right.addWidget(self._build_header())
        self.stack = QStackedWidget()
        for key in self._specs:
            # A page taller than a small window scrolls instead of forcing the window's height.
            holder = QScrollArea()
            holder.setWidgetResizable(True)
            holder.setFrameShape(QFrame.Shape.NoFrame)
            holder.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self._holders[key] = holder
            self.stack.addWidget(holder)
        right.addWidget(self.stack, 1)
        root.addLayout(right, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self._build_status_bar()

        self.config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_config_changed(self.config_model.config)
        self.gpu_monitor.sig_snapshot_taken.connect(self._on_gpu_snapshot_taken)
        self.navigate(next(iter(self._specs)))
        if build_all:
            for key in self._specs:
                self.page(key)
        self.resize(1400, 900)
        geometry = self._settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    # ---- pages --------------------------------------------------------------------------
    def page_keys(self) -> list[str]:
        """Every page's key, in sidebar order (built or not)."""
        return list(self._specs)

    def page(self, key: str) -> QWidget:
        """The page for a key, built on first use."""
        if key not in self.pages:
            spec = self._specs[key]
            cls = getattr(importlib.import_module(spec.module), spec.cls)
            context = {"store_root": self.store_root, "stop_timeout_s": self.stop_timeout_s,
                       "gpu_monitor": self.gpu_monitor,
                       "run_actions": frozenset(a for s in self._specs.values() for a in s.run_actions)}
            page = cls(self.config_model, **{need: context[need] for need in spec.needs})
            self._holders[key].setWidget(_PageFrame(page))
            self.pages[key] = page
            self._wire(page)
            guard_fields(page)  # fields built later (forms rebuilt, column maps) guard themselves
        return self.pages[key]

    def _wire(self, page: QWidget) -> None:
        """Connect whichever of the signals of studio.ui.pages.spec the page has."""
        if hasattr(page, "sig_model_facts_changed"):
            page.sig_model_facts_changed.connect(self._on_model_facts_changed)
            self._model_facts = page.facts
        if hasattr(page, "set_model_facts"):
            page.set_model_facts(self._model_facts)
        if hasattr(page, "sig_status_changed"):
            page.sig_status_changed.connect(self.run_status.setText)
        if hasattr(page, "sig_runs_changed"):
            page.sig_runs_changed.connect(self._on_page_runs_changed)
        if hasattr(page, "sig_work_finished"):
            page.sig_work_finished.connect(self._on_page_work_finished)
        if hasattr(page, "sig_run_action_requested"):
            # (action, run) or (action, run, options): options go to the performing page's run_action
            page.sig_run_action_requested.connect(
                lambda action, run, options=None, asker=page: self._run_action(action, run, asker, options))

    def build_remaining_pages(self) -> None:
        """Build the pages not yet built, one per event-loop turn so the window stays responsive.

        pyqtgraph (and numpy) take about a second to import; a background thread imports them
        while the event loop keeps running, and the curve pages are built once it is done.
        """
        if self._closed:  # the window closed while the pages were still being built: the app is quitting
            return
        if self._plot_import is None:
            self._plot_import = threading.Thread(target=_import_plotting, daemon=True, name="import-pyqtgraph")
            self._plot_import.start()
        missing = [k for k in self._specs if k not in self.pages]
        if not missing:
            return
        importing = self._plot_import.is_alive()
        ready = [k for k in missing if not (importing and self._specs[k].plots)]
        if ready:
            self.page(ready[0])
        QTimer.singleShot(0 if ready else 50, self.build_remaining_pages)

    def navigate(self, key: str) -> None:
        if key not in self._specs:
            return
        self.page(key)
        self.stack.setCurrentWidget(self._holders[key])
        self._nav[key].setChecked(True)
        self.header_title.setText(self._specs[key].title)
        self.header_subtitle.setText(self._specs[key].subtitle)

    def current_page_key(self) -> str:
        return next(k for k, h in self._holders.items() if h is self.stack.currentWidget())

    # ---- chrome -------------------------------------------------------------------------
    def _build_sidebar(self) -> QWidget:
        bar = QWidget()
        bar.setObjectName("Sidebar")
        bar.setFixedWidth(208)
        lay = QVBoxLayout(bar)
        lay.setContentsMargins(14, 18, 14, 14)
        lay.setSpacing(4)
        brand = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(icon("logo", None, 64).pixmap(28, 28))
        name = QLabel("Studio")
        name.setObjectName("SidebarBrand")
        brand.addWidget(logo)
        brand.addWidget(name, 1)
        lay.addLayout(brand)
        lay.addSpacing(18)
        group = QButtonGroup(self)
        for key, spec in self._specs.items():
            b = QToolButton()
            b.setText(f"  {spec.title}")
            b.setIcon(nav_icon(spec.icon))
            b.setIconSize(icon("model").actualSize(self._icon_size()))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setCheckable(True)
            b.setProperty("nav", True)
            b.setObjectName(f"nav_{key}")
            b.setSizePolicy(b.sizePolicy().horizontalPolicy().Expanding, b.sizePolicy().verticalPolicy())
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.clicked.connect(lambda _=False, k=key: self.navigate(k))
            shortcut = QKeySequence(f"Ctrl+{len(self._nav) + 1}")
            b.setShortcut(shortcut)
            b.setToolTip(f"{spec.title} ({shortcut.toString(QKeySequence.SequenceFormat.NativeText)})")
            group.addButton(b)
            self._nav[key] = b
            lay.addWidget(b)
        lay.addStretch(1)
        foot = QLabel(f"v{__version__}")
        foot.setObjectName("SidebarFooter")
        lay.addWidget(foot)
        return bar

    @staticmethod
    def _icon_size():
        from PySide6.QtCore import QSize

        return QSize(18, 18)

    def _build_header(self) -> QWidget:
        header = QWidget()
        header.setObjectName("Header")
        lay = QHBoxLayout(header)
        lay.setContentsMargins(28, 16, 28, 14)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.header_title = QLabel()
        self.header_title.setObjectName("HeaderTitle")
        self.header_subtitle = QLabel()
        self.header_subtitle.setObjectName("HeaderSubtitle")
        titles.addWidget(self.header_title)
        titles.addWidget(self.header_subtitle)
        lay.addLayout(titles, 1)
        self._pills: dict[str, QLabel] = {}
        for key in ("model", "data", "method"):
            box = QHBoxLayout()
            box.setSpacing(6)
            k = QLabel(key.upper())
            k.setProperty("role", "pill-key")
            v = QLabel()
            v.setProperty("role", "pill")
            v.setObjectName(f"pill_{key}")
            v.setMaximumWidth(260)
            v.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            box.addWidget(k, 0, Qt.AlignmentFlag.AlignVCenter)
            box.addWidget(v, 0, Qt.AlignmentFlag.AlignVCenter)
            lay.addLayout(box)
            lay.addSpacing(10)
            self._pills[key] = v
        return header

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_config_action = QAction("Open config…", self)
        self.open_config_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_config_action.setToolTip("Load a run config (YAML, as `studio train` reads it) into every page")
        self.open_config_action.triggered.connect(self._on_open_config_triggered)
        file_menu.addAction(self.open_config_action)
        self.save_config_action = QAction("Save config as…", self)
        self.save_config_action.setShortcut(QKeySequence.StandardKey.SaveAs)
        self.save_config_action.triggered.connect(self._on_save_config_triggered)
        file_menu.addAction(self.save_config_action)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        if _available("studio.ui.dialogs.diagnostics"):
            diag = QAction("Diagnostics…", self)
            diag.triggered.connect(self._on_diagnostics_triggered)
            help_menu.addAction(diag)
        about = QAction("About", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    def _build_status_bar(self) -> None:
        self.run_status = QLabel("No run in progress")
        self.gpu_status = QLabel()
        self.statusBar().addWidget(self.run_status, 1)
        self.statusBar().addPermanentWidget(self.gpu_status)
        self.statusBar().setSizeGripEnabled(False)

    # ---- slots --------------------------------------------------------------------------
    def _on_config_changed(self, config) -> None:
        model = {"demo": "Demo model"}.get(config.model.source) or _short(config.model.path)
        data = {"demo": "Demo dataset"}.get(config.data.source) or _short(config.data.path)
        self._pills["model"].setText(model or "—")
        self._pills["data"].setText(data or "—")
        self._pills["method"].setText(type(config.method).info.title)
        self._pills["model"].setToolTip(config.model.path or "The embedded demo model")
        self._pills["data"].setToolTip(config.data.path or "The embedded demo dataset")

    def _on_model_facts_changed(self, facts: Optional["ModelFacts"]) -> None:
        self._model_facts = facts
        for page in self.pages.values():
            if hasattr(page, "set_model_facts"):
                page.set_model_facts(facts)

    def _on_gpu_snapshot_taken(self, snapshot) -> None:
        self.gpu_status.setText(describe(snapshot))

    def _on_page_runs_changed(self) -> None:
        """A run was created or has finished: refresh the pages that list runs."""
        for key, page in self.pages.items():
            if self._specs[key].lists_runs:
                page.refresh()

    def _on_page_work_finished(self) -> None:
        """A run or a comparison ended: finish a close that waited for it."""
        if self._close_after_stop and not self._pages_with(Work.TRAINING):
            self._close_after_stop = False
            self.close()

    def _run_action(self, action: str, run: Run, asker: Optional[QWidget] = None,
                    options: Optional[dict] = None) -> None:
        """Have the page that performs ``action`` ("export", "resume", "attach") do it and show it; or tell the
        asking page why not. ``options`` (e.g. {"source": a checkpoint}) are passed on as keywords."""
        key = next((k for k, spec in self._specs.items() if action in spec.run_actions), None)
        if key is None:
            return
        problem = self.page(key).run_action(action, run, **(options or {}))
        if problem:
            if asker is not None and hasattr(asker, "show_action_refused"):
                asker.show_action_refused(action, run, problem)
            return
        self.navigate(key)

    def open_config(self, path: str) -> str:
        """Load a run config file into the pages; returns "" or the reason it could not (also shown)."""
        from studio.core.config import ConfigError, RunConfig

        try:
            config = RunConfig.load(path).with_absolute_paths(Path(path).expanduser().resolve().parent)
        except (ConfigError, ValueError) as e:
            QMessageBox.warning(self, "Cannot open this config", str(e))
            return str(e)
        self.config_model.replace_config(config)
        self.run_status.setText(f"Opened {Path(path).name}")
        return ""

    def _on_open_config_triggered(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open a run config", str(Path.home()),
                                              "Run configs (*.yaml *.yml);;All files (*)")
        if path:
            self.open_config(path)

    def _on_save_config_triggered(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        config = self.config_model.config
        path, _ = QFileDialog.getSaveFileName(self, "Save the run config", str(Path.home() / f"{config.name}.yaml"),
                                              "Run configs (*.yaml *.yml)")
        if not path:
            return
        try:
            config.save(path)
        except OSError as e:
            QMessageBox.warning(self, "Cannot save the config", f"{path}: {e.strerror or e}")
            return
        self.run_status.setText(f"Saved {Path(path).name}; train it headless with: studio train {path}")

    def _on_about_triggered(self) -> None:
        from studio.ui.dialogs.about import AboutDialog

        AboutDialog(self).exec()

    def _on_diagnostics_triggered(self) -> None:
        from studio.ui.dialogs.diagnostics import DiagnosticsDialog

        DiagnosticsDialog(self).exec()

    # ---- live runs across restarts ------------------------------------------------------
    def reattach_live_runs(self) -> list[Run]:
        """Follow a run that kept training while the studio was closed; returns the live runs."""
        live = active_runs(self.store_root)
        if live:
            self._run_action("attach", live[0])
            if len(live) > 1:
                self.navigate("runs")
        return live

    # ---- closing ------------------------------------------------------------------------
    def ask_close_choice(self) -> str:
        """Ask what to do with a live run; tests replace this method."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("A run is training")
        box.setText("A run is still training. What should happen to it?")
        box.setInformativeText("Keep it training and it carries on without the window; the studio re-attaches "
                               "to it the next time you open it. Stopping finishes the current step and saves the adapter.")
        keep = box.addButton("Keep training in the background", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop the run", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return CLOSE_KEEP if clicked is keep else CLOSE_STOP if clicked is stop else CLOSE_CANCEL

    def ask_cancel_jobs(self) -> bool:
        """Ask whether to cancel a running export and quit; tests replace this method."""
        answer = QMessageBox.question(self, "A job is running", "An export, evaluation or upload is still running. "
                                      "Cancel it and quit?")
        return answer == QMessageBox.StandardButton.Yes

    def _pages_with(self, work: Work) -> list[QWidget]:
        """The built pages that have this kind of live work (studio.ui.pages.spec)."""
        return [p for p in self.pages.values() if hasattr(p, "busy_work") and p.busy_work() == work]

    def closeEvent(self, event) -> None:  # noqa: N802
        training = self._pages_with(Work.TRAINING)
        if training:
            if self._close_after_stop:  # already stopping; the window closes when the worker has exited
                event.ignore()
                return
            choice = self.ask_close_choice()
            if choice == CLOSE_CANCEL:
                event.ignore()
                return
            if choice == CLOSE_STOP:
                self._close_after_stop = True
                for page in training:
                    page.stop_work()
                self.run_status.setText("Stopping the run; the studio closes once the adapter is saved…")
                event.ignore()
                return
            for page in training:
                page.detach_work()
        jobs = self._pages_with(Work.JOB)
        if jobs:
            if not self.ask_cancel_jobs():
                event.ignore()
                return
            for page in jobs:
                page.kill_work()
        for page in self._pages_with(Work.SESSION):  # a loaded chat model: its worker quits with the window
            page.stop_work()
        self._settings.setValue("geometry", self.saveGeometry())
        self._closed = True
        event.accept()


class _PageFrame(QWidget):
    """Gives a page the whole viewport of its scroll holder, and scrolling only below its minimum size.

    Without it a page with word-wrapped labels reports height-for-width, and QScrollArea then
    sizes it to its preferred height, taller than the window, so the page would always scroll.
    """

    def __init__(self, page: QWidget):
        super().__init__()
        self._page = page
        page.setParent(self)
        page.show()

    def minimumSizeHint(self):  # noqa: N802 (Qt override)
        return self._page.minimumSizeHint()

    def sizeHint(self):  # noqa: N802
        return self._page.minimumSizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._page.setGeometry(self.rect())
        super().resizeEvent(event)

    def event(self, event) -> bool:  # noqa: N802
        # The page's minimum grew (a long message wrapped): tell the scroll area, which then scrolls
        # instead of squeezing the page's parts over each other (issue #13: charts over the log).
        if event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().event(event)


def _short(path: str) -> str:
    if not path:
        return ""
    if "models--" in path:
        repo = next((p for p in path.split("/") if p.startswith("models--")), "")
        return repo[len("models--"):].replace("--", "/")
    return Path(path).name or path


def _initial_config():
    from studio.core.config import demo_config

    return demo_config()
