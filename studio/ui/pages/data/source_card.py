"""SourceCard: where the rows come from (the demo, a file or folder, a hub dataset), written into the config.

A choice is written into the ConfigModel at once; ``sig_data_chosen`` then carries the data it
replaced, so the page can put that back if the new rows cannot be read at all (issue #13).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QSizePolicy,
                               QStackedWidget, QWidget)

from studio.core.config import DataSpec, RunConfig
from studio.ui.config_model import ConfigModel
from studio.ui.widgets.card import Banner, Card, muted

SOURCES = (("demo", "Demo dataset", "240 short Q&&A rows, built in"),
           ("file", "File or folder", ".jsonl .json .csv .tsv .parquet .txt, or a folder"),
           ("hub", "Hugging Face hub", "A dataset id, with subset and split"))
DATASET_FILES = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet *.txt);;All files (*)"


class SourceCard(Card):
    sig_data_chosen = Signal(object)  # the DataSpec the user's choice replaced

    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__("Choose your data", "Your examples, in any common format (or drop a file here); the studio "
                                             "recognises the shape.", parent=parent)
        self._model = config_model
        row = QHBoxLayout()
        row.setSpacing(10)
        self._group = QButtonGroup(self)
        self.buttons: dict[str, QPushButton] = {}
        for key, title, hint in SOURCES:
            b = QPushButton(f"{title}\n{hint}")
            b.setProperty("choice", True)
            b.setCheckable(True)
            b.setObjectName(f"data_source_{key}")
            b.setMinimumHeight(62)
            b.setMinimumWidth(120)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # the hint may clip; not the page
            self._group.addButton(b)
            self.buttons[key] = b
            row.addWidget(b, 1)
            b.clicked.connect(lambda _=False, k=key: self._on_source_clicked(k))
        self.body.addLayout(row)
        self._stack = QStackedWidget()
        self._panels = {"demo": muted("The demo rows teach the demo model made-up ‘secret codes’, so you can "
                                      "see training work end to end in a minute."),
                        "file": self._build_file_panel(), "hub": self._build_hub_panel()}
        for panel in self._panels.values():
            self._stack.addWidget(panel)
        self.body.addWidget(self._stack)
        self.banner = Banner()
        self.body.addWidget(self.banner)

    def _build_file_panel(self) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 6, 0, 0)
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("data_path")
        self.path_edit.setPlaceholderText("A dataset file or a folder of them (also folders written by "
                                          "datasets.save_to_disk)")
        self.path_edit.returnPressed.connect(lambda: self._use_path(self.path_edit.text()))
        pick_file = QPushButton("File…")
        pick_file.clicked.connect(self._on_pick_file_clicked)
        pick_folder = QPushButton("Folder…")
        pick_folder.clicked.connect(self._on_pick_folder_clicked)
        row.addWidget(self.path_edit, 1)
        row.addWidget(pick_file)
        row.addWidget(pick_folder)
        return w

    def _build_hub_panel(self) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 6, 0, 0)
        self.hub_edit = QLineEdit()
        self.hub_edit.setObjectName("data_hub_id")
        self.hub_edit.setPlaceholderText("owner/dataset, e.g. tatsu-lab/alpaca")
        self._subset_edit = QLineEdit()
        self._subset_edit.setPlaceholderText("subset (optional)")
        self._split_edit = QLineEdit()
        self._split_edit.setPlaceholderText("split")
        load = QPushButton("Load")
        load.setProperty("primary", True)
        load.clicked.connect(self.load_hub)
        self.hub_edit.returnPressed.connect(self.load_hub)
        row.addWidget(self.hub_edit, 3)
        row.addWidget(self._subset_edit, 1)
        row.addWidget(self._split_edit, 1)
        row.addWidget(load)
        return w

    # ---- config -> widgets ----------------------------------------------------------------------
    def show_config(self, config: RunConfig) -> None:
        d = config.data
        self.buttons[d.source].setChecked(True)
        self._stack.setCurrentWidget(self._panels[d.source])
        if d.source == "file" and self.path_edit.text() != d.path:
            self.path_edit.setText(d.path)
        if d.source == "hub":
            self.hub_edit.setText(d.path)
            self._subset_edit.setText(d.subset or "")
        self._split_edit.setText(d.split)

    # ---- user actions ---------------------------------------------------------------------------
    def use_path(self, path: str) -> None:
        """Select a dataset file or folder (also used by drag-and-drop and tests)."""
        self.buttons["file"].setChecked(True)
        self._stack.setCurrentWidget(self._panels["file"])
        self.path_edit.setText(path)
        self._use_path(path)

    def load_hub(self) -> None:
        """Use the hub dataset id, subset and split typed in the hub panel."""
        hub_id = self.hub_edit.text().strip()
        if hub_id.count("/") != 1 or " " in hub_id:
            self.banner.show_message("Enter a hub dataset id like owner/name (e.g. tatsu-lab/alpaca).", "warn")
            return
        self._choose({"data.source": "hub", "data.path": hub_id,
                      "data.subset": self._subset_edit.text().strip() or None,
                      "data.split": self._split_edit.text().strip() or "train"})

    def _use_path(self, path: str) -> None:
        path = path.strip()
        if not path:
            self.banner.show_message("Choose a file or folder first.", "warn")
            return
        # A new file keeps the user's settings; only a hand mapping for other columns is stale, and it
        # stays until the user changes it (the detection banner says if it no longer fits).
        self._choose({"data.source": "file", "data.path": path})

    def _choose(self, values: dict) -> None:
        previous: DataSpec = self._model.config.data
        if self._model.update(values):
            self.sig_data_chosen.emit(previous)

    def _on_source_clicked(self, key: str) -> None:
        self._stack.setCurrentWidget(self._panels[key])
        if key == "demo":
            self._model.update({"data.source": "demo", "data.path": ""})
        elif key == "file" and self.path_edit.text().strip():
            self._use_path(self.path_edit.text())
        elif key == "hub" and self.hub_edit.text().strip():
            self.load_hub()

    def _on_pick_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a dataset file", self.path_edit.text(), DATASET_FILES)
        if path:
            self.path_edit.setText(path)
            self._use_path(path)

    def _on_pick_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder of dataset files", self.path_edit.text())
        if path:
            self.path_edit.setText(path)
            self._use_path(path)
