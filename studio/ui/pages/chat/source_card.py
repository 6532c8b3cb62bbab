"""The top of the Chat page: what to chat with, whether it is loaded, and what went wrong.

A run (its final weights or any checkpoint; runs from every known runs folder that have trained
weights) or a plain model (the demo, a model in the Hugging Face cache, a folder). Load starts the
chat worker; the status line says what is loaded (precision, 4-bit, how base vs tuned is made,
load time) or, while loading, the worker's newest log line. A problem shows here with the action
that fixes it: Locate… for a base model that moved, Retry for a worker that ended.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QWidget)

from studio.core.chat_sources import ChatSource, Weights, run_title, run_weights
from studio.core.runs import Run
from studio.ui.widgets.card import Badge, Banner, Card

FOLDER_ITEM = "folder"


def run_label(run: Run) -> str:
    """name · method · when, for the run list."""
    status = run.status()
    parts = [run_title(run)]
    try:
        parts.append(type(run.config().method).info.title)
    except Exception:  # noqa: BLE001 - an unreadable config still names its run
        pass
    created = status.get("created")
    if isinstance(created, (int, float)):
        parts.append(time.strftime("%b %d, %H:%M", time.localtime(created)))
    return " · ".join(parts)


class SourceCard(Card):
    sig_load_requested = Signal(object)  # ChatSource
    sig_locate_requested = Signal()
    sig_retry_requested = Signal()
    sig_settings_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent=parent)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.kind_group = QButtonGroup(self)
        self.run_choice = self._choice("Run", "A run's tuned model and its base, side by side")
        self.model_choice = self._choice("Plain model", "A model without training: the demo, one in your Hugging Face "
                                                        "cache or a folder (load an adapter over it to compare)")
        self.run_choice.setChecked(True)
        for b in (self.run_choice, self.model_choice):
            row.addWidget(b)
        row.addSpacing(6)
        self.run_combo = QComboBox()
        self.run_combo.setObjectName("chat_run_combo")
        self.run_combo.setPlaceholderText("No run has trained weights yet")
        self.run_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.run_combo.setMinimumContentsLength(18)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.currentIndexChanged.connect(self._on_run_changed)
        self.weights_combo = QComboBox()
        self.weights_combo.setObjectName("chat_weights_combo")
        self.weights_combo.setToolTip("The run's final weights or one of its checkpoints.")
        self.weights_combo.currentIndexChanged.connect(self._on_choice_edited)
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("chat_model_combo")
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.activated.connect(self._on_model_activated)
        self.model_combo.hide()
        row.addWidget(self.run_combo, 1)
        row.addWidget(self.weights_combo)
        row.addWidget(self.model_combo, 1)
        self.load_button = QPushButton("Load")
        self.load_button.setObjectName("chat_load_button")
        self.load_button.setProperty("primary", True)
        self.load_button.setMinimumWidth(96)
        self.load_button.clicked.connect(self._on_load_clicked)
        row.addWidget(self.load_button)
        self.body.addLayout(row)

        status = QHBoxLayout()
        status.setSpacing(10)
        self.badge = Badge("NOT LOADED")
        status.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        self.status_text = QLabel()
        self.status_text.setProperty("role", "muted")
        self.status_text.setObjectName("chat_status")
        self.status_text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        status.addWidget(self.status_text, 1)
        self.settings_button = QPushButton("Settings")
        self.settings_button.setObjectName("chat_settings_button")
        self.settings_button.setProperty("flat", True)
        self.settings_button.setCheckable(True)
        self.settings_button.setChecked(True)
        self.settings_button.setToolTip("Show or hide the system prompt, chat template and sampling settings.")
        self.settings_button.toggled.connect(self.sig_settings_toggled)
        status.addWidget(self.settings_button)
        self.body.addLayout(status)

        problem = QHBoxLayout()
        problem.setSpacing(8)
        self.banner = Banner()
        problem.addWidget(self.banner, 1)
        self.locate_button = QPushButton("Locate…")
        self.locate_button.setObjectName("chat_locate_button")
        self.locate_button.setToolTip("Choose the folder the base model is in now; the run is loaded from there.")
        self.locate_button.clicked.connect(self.sig_locate_requested)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("chat_retry_button")
        self.retry_button.clicked.connect(self.sig_retry_requested)
        for b in (self.locate_button, self.retry_button):
            b.hide()
            problem.addWidget(b, 0, Qt.AlignmentFlag.AlignTop)
        self.body.addLayout(problem)
        self._status_full = ""
        self._loaded: Optional[ChatSource] = None
        self.kind_group.buttonToggled.connect(self._on_kind_toggled)

    def _choice(self, text: str, tip: str) -> QPushButton:
        b = QPushButton(text)
        b.setCheckable(True)
        b.setProperty("choice", True)
        b.setProperty("compact", True)
        b.setToolTip(tip)
        self.kind_group.addButton(b)
        return b

    # ---- the lists --------------------------------------------------------------------------
    def set_runs(self, runs: list[Run]) -> None:
        """The runs that have trained weights; the selection stays on the same run when it still exists."""
        keep = self.current_run()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in runs:
            if run_weights(run):
                self.run_combo.addItem(run_label(run), run)
        index = self._index_of(keep) if keep is not None else (0 if self.run_combo.count() else -1)
        self.run_combo.setCurrentIndex(index)
        self.run_combo.blockSignals(False)
        self._fill_weights()
        self._update_load_button()

    def set_models(self, models: list[tuple[str, str]]) -> None:
        """(title, folder or hub id) of the plain models offered; a folder can always be chosen."""
        keep = self.model_combo.currentData()
        self.model_combo.clear()
        for title, path in models:
            self.model_combo.addItem(title, path)
        self.model_combo.insertSeparator(self.model_combo.count())
        self.model_combo.addItem("Choose a folder…", FOLDER_ITEM)
        i = self.model_combo.findData(keep) if keep else 0
        self.model_combo.setCurrentIndex(max(0, i))
        self._update_load_button()

    def select_run(self, run: Run, label: Optional[str] = None) -> None:
        """Show ``run`` (added to the list if it is not there) with the weights called ``label``."""
        self.run_choice.setChecked(True)
        index = self._index_of(run)
        if index < 0:
            self.run_combo.addItem(run_label(run), run)
            index = self.run_combo.count() - 1
        self.run_combo.setCurrentIndex(index)
        self._fill_weights()
        if label is not None:
            for i in range(self.weights_combo.count()):
                if self.weights_combo.itemData(i).label == label:
                    self.weights_combo.setCurrentIndex(i)

    def _index_of(self, run: Run) -> int:
        return next((i for i in range(self.run_combo.count()) if self.run_combo.itemData(i).path == run.path), -1)

    def current_run(self) -> Optional[Run]:
        return self.run_combo.currentData()

    def current_source(self) -> Optional[ChatSource]:
        """What Load would load now."""
        if self.run_choice.isChecked():
            run = self.current_run()
            weights: Optional[Weights] = self.weights_combo.currentData()
            return ChatSource(run, weights) if run is not None else None
        path = self.model_combo.currentData()
        if not path or path == FOLDER_ITEM:
            return None
        return ChatSource(model=path, model_title=self.model_combo.currentText())

    # ---- what is loaded ---------------------------------------------------------------------
    def set_loaded(self, source: Optional[ChatSource]) -> None:
        self._loaded = source
        self._update_load_button()

    def set_status(self, badge: str, tone: str, text: str) -> None:
        self.badge.set(badge, tone)
        self._status_full = text
        self.status_text.setText(text)
        self.status_text.setToolTip(text)

    def status(self) -> str:
        return self._status_full

    def show_problem(self, text: str, tone: str = "error", locate: bool = False, retry: bool = False) -> None:
        self.banner.show_message(text, tone)
        self.locate_button.setVisible(locate)
        self.retry_button.setVisible(retry)

    def clear_problem(self) -> None:
        self.show_problem("")

    def problem(self) -> str:
        return self.banner.text() if self.banner.isVisible() else ""

    # ---- reactions --------------------------------------------------------------------------
    def _fill_weights(self) -> None:
        run = self.current_run()
        self.weights_combo.blockSignals(True)
        self.weights_combo.clear()
        for w in run_weights(run) if run is not None else []:
            self.weights_combo.addItem(w.title, w)
        self.weights_combo.blockSignals(False)

    def _on_kind_toggled(self, _button, _checked: bool) -> None:
        runs = self.run_choice.isChecked()
        self.run_combo.setVisible(runs)
        self.weights_combo.setVisible(runs)
        self.model_combo.setVisible(not runs)
        self._update_load_button()

    def _on_run_changed(self, _index: int) -> None:
        self._fill_weights()
        self._update_load_button()

    def _on_choice_edited(self, _index: int) -> None:
        self._update_load_button()

    def _on_model_activated(self, _index: int) -> None:
        if self.model_combo.currentData() == FOLDER_ITEM:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (it holds config.json)",
                                                      str(Path.home()))
            if folder:
                self.add_model_folder(folder)
            else:
                self.model_combo.setCurrentIndex(0)
        self._update_load_button()

    def add_model_folder(self, folder: str) -> None:
        i = self.model_combo.findData(folder)
        if i < 0:
            self.model_combo.insertItem(0, Path(folder).name or folder, folder)
            i = 0
        self.model_combo.setCurrentIndex(i)

    def _update_load_button(self) -> None:
        source = self.current_source()
        self.load_button.setEnabled(source is not None)
        same = source is not None and self._loaded is not None and _same_source(source, self._loaded)
        self.load_button.setText("Reload" if same else "Load")
        self.load_button.setToolTip("Start again with a fresh worker" if same else
                                    "Load this model in a chat worker (the window stays responsive)")

    def _on_load_clicked(self) -> None:
        source = self.current_source()
        if source is not None:
            self.sig_load_requested.emit(source)


def _same_source(a: ChatSource, b: ChatSource) -> bool:
    if a.run is not None and b.run is not None:
        return a.run.path == b.run.path and (a.weights and a.weights.label) == (b.weights and b.weights.label)
    return a.model == b.model
