"""MainWindow: assembles the sidebar, header, pages and status bar, and wires pages together.

Pages never talk to each other; every cross-page connection is made here. Only the first page
is built before the window shows; the others (the curve pages pull in pyqtgraph) are built
right after, one per event-loop turn, or at once when the user navigates to one.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path
from typing import Any, Callable, Optional

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
from studio.ui.process import DEFAULT_STOP_TIMEOUT_S
from studio.ui.theme import icon, nav_icon
from studio.ui.widgets.wheel_guard import guard_fields

# key, label, header subtitle, icon, module, class
PAGES = (
    ("model", "Model", "The base model you fine-tune", "model", "studio.ui.pages.model.page", "ModelPage"),
    ("data", "Data", "Your examples: format, preview and checks", "data", "studio.ui.pages.data.page", "DataPage"),
    ("method", "Method", "How the model learns, and every training setting", "method", "studio.ui.pages.method.page", "MethodPage"),
    ("planner", "Planner", "What fits your GPU, and how fast", "planner", "studio.ui.pages.planner.page", "PlannerPage"),
    ("train", "Train", "Run it and watch it learn", "train", "studio.ui.pages.train.page", "TrainPage"),
    ("compare", "Compare", "Several methods on your data, side by side", "compare", "studio.ui.pages.compare.page",
     "ComparePage"),
    ("runs", "Runs", "Every run, its curves, config and log", "runs", "studio.ui.pages.runs.page", "RunsPage"),
    ("export", "Export", "Take the result with you", "export", "studio.ui.pages.export.page", "ExportPage"),
)
CLOSE_STOP, CLOSE_KEEP, CLOSE_CANCEL = "stop", "keep", "cancel"
PLOT_PAGES = ("train", "runs", "planner", "compare")  # pages that draw with pyqtgraph


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
        self._specs = {p[0]: p for p in PAGES if _available(p[4])}
        self._nav: dict[str, QToolButton] = {}
        self._model_facts: Any = None
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
        self.navigate("model")
        if build_all:
            for key in self._specs:
                self.page(key)
        self.resize(1400, 900)
        geometry = self._settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    # ---- pages --------------------------------------------------------------------------
    def page(self, key: str) -> QWidget:
        """The page for a key, built on first use."""
        if key not in self.pages:
            _, _, _, _, module, cls_name = self._specs[key]
            cls = getattr(importlib.import_module(module), cls_name)
            page = self._construct(key, cls)
            self._holders[key].setWidget(_PageFrame(page))
            self.pages[key] = page
            self._wire(key, page)
            guard_fields(page)  # fields built later (forms rebuilt, column maps) guard themselves
        return self.pages[key]

    def _construct(self, key: str, cls: Callable[..., QWidget]) -> QWidget:
        if key == "train":
            return cls(self.config_model, gpu_monitor=self.gpu_monitor, stop_timeout_s=self.stop_timeout_s,
                       store_root=self.store_root)
        if key in ("runs", "export"):
            return cls(self.config_model, store_root=self.store_root)
        if key == "compare":
            return cls(self.config_model, store_root=self.store_root, stop_timeout_s=self.stop_timeout_s)
        return cls(self.config_model)

    def _wire(self, key: str, page: QWidget) -> None:
        if key == "model":
            page.sig_model_facts_changed.connect(self._on_model_facts_changed)
            self._model_facts = page.facts
        elif key == "method":
            page.set_model_facts(self._model_facts)
        elif key == "train":
            page.sig_run_started.connect(self._on_train_run_started)
            page.sig_run_finished.connect(self._on_train_run_finished)
        elif key == "runs":
            page.sig_export_requested.connect(self._on_runs_export_requested)
            page.sig_resume_requested.connect(self._on_runs_resume_requested)
        elif key == "compare":
            page.sig_comparison_started.connect(self._on_compare_comparison_started)
            page.sig_comparison_finished.connect(self._on_compare_comparison_finished)
            page.set_model_facts(self._model_facts)
        elif key == "planner" and hasattr(page, "set_model_facts"):
            page.set_model_facts(self._model_facts)

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
        ready = [k for k in missing if not (importing and k in PLOT_PAGES)]
        if ready:
            self.page(ready[0])
        QTimer.singleShot(0 if ready else 50, self.build_remaining_pages)

    def navigate(self, key: str) -> None:
        if key not in self._specs:
            return
        self.page(key)
        self.stack.setCurrentWidget(self._holders[key])
        self._nav[key].setChecked(True)
        _, label, subtitle, *_ = self._specs[key]
        self.header_title.setText(label)
        self.header_subtitle.setText(subtitle)

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
        for key, label, _sub, icon_name, *_ in self._specs.values():
            b = QToolButton()
            b.setText(f"  {label}")
            b.setIcon(nav_icon(icon_name))
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
            b.setToolTip(f"{label} ({shortcut.toString(QKeySequence.SequenceFormat.NativeText)})")
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

    def _on_model_facts_changed(self, facts: Any) -> None:
        self._model_facts = facts
        for key in ("method", "planner", "compare"):
            page = self.pages.get(key)
            if page is not None and hasattr(page, "set_model_facts"):
                page.set_model_facts(facts)

    def _on_gpu_snapshot_taken(self, snapshot) -> None:
        self.gpu_status.setText(describe(snapshot))

    def _on_train_run_started(self, run: Run) -> None:
        self.run_status.setText(f"Training “{run.status().get('name') or run.id}”")
        if "runs" in self.pages:
            self.pages["runs"].refresh()

    def _on_train_run_finished(self, run: Run, state: str) -> None:
        self._after_work_finished(f"Last run “{run.status().get('name') or run.id}”: {state}")

    def _on_compare_comparison_started(self, comparison_id: str) -> None:
        self.run_status.setText(f"Comparing methods ({comparison_id})")
        if "runs" in self.pages:
            self.pages["runs"].refresh()

    def _on_compare_comparison_finished(self, comparison_id: str, state: str) -> None:
        self._after_work_finished(f"Comparison {comparison_id}: {state}")

    def _after_work_finished(self, status_text: str) -> None:
        """A run or a comparison ended: refresh what lists runs, and finish a close that waited for it."""
        self.run_status.setText(status_text)
        for key in ("runs", "export"):
            if key in self.pages:
                self.pages[key].refresh()
        if self._close_after_stop and not self._busy_training():
            self._close_after_stop = False
            self.close()

    def _on_runs_export_requested(self, run: Run) -> None:
        export = self.page("export")
        export.refresh()
        export.select_run(run)
        self.navigate("export")

    def _on_runs_resume_requested(self, run: Run) -> None:
        problem = self.page("train").resume_run(run)
        if problem:
            self.pages["runs"].show_resume_refused(run, problem)
            return
        self.navigate("train")

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
            train = self.page("train")
            train.attach(live[0])
            self.run_status.setText(f"Training “{live[0].status().get('name') or live[0].id}” (re-attached)")
            self.navigate("train")
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

    def _busy_training(self) -> list[str]:
        """Pages with a live training worker ("train" and/or "compare")."""
        train, compare = self.pages.get("train"), self.pages.get("compare")
        busy = []
        if train is not None and train.is_training():
            busy.append("train")
        if compare is not None and compare.is_running():
            busy.append("compare")
        return busy

    def closeEvent(self, event) -> None:  # noqa: N802
        export = self.pages.get("export")
        busy = self._busy_training()
        if busy:
            if self._close_after_stop:  # already stopping; the window closes when the worker has exited
                event.ignore()
                return
            choice = self.ask_close_choice()
            if choice == CLOSE_CANCEL:
                event.ignore()
                return
            if choice == CLOSE_STOP:
                self._close_after_stop = True
                if "train" in busy:
                    self.pages["train"].stop_run()
                if "compare" in busy:
                    self.pages["compare"].stop()
                self.run_status.setText("Stopping the run; the studio closes once the adapter is saved…")
                event.ignore()
                return
            if "train" in busy:
                self.pages["train"].detach()
            if "compare" in busy:  # the current method's run carries on; the queue ends with the studio
                self.pages["compare"].worker.detach()
        if export is not None and export.worker is not None and export.worker.is_running():
            answer = QMessageBox.question(self, "An export is running", "An export is still running. Cancel it and quit?")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            export.worker.kill()
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
