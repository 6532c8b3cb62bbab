"""DataPage: bring a dataset in, see exactly what the model will be trained on, check it at scale.

Source (demo, file or folder, hub id) -> preview of the first rows, raw and rendered with the
loss mask visible -> format detection with evidence and hand mapping -> statistics over the whole
dataset (background, progress, cancel) -> split, duplicates, packing -> problems with locations.
Every setting is written into the ConfigModel; every result comes from a job in jobs.py run in a
background thread, so a 1 GB file never blocks the window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog,
                               QGridLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSizePolicy, QSpinBox, QStackedWidget, QTableView, QTableWidget, QTableWidgetItem,
                               QTabWidget, QTextBrowser, QVBoxLayout, QWidget)

from studio.core.config import RunConfig
from studio.core.data.formats import FORMAT_TITLES
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data import jobs
from studio.ui.pages.data.rows_table import RowsTableModel
from studio.ui.pages.data.sample_view import legend_html, pieces_html, tokens_html
from studio.ui.pages.data.stats_view import StatsView
from studio.ui.tasks import start_task
from studio.ui.widgets.card import Banner, Card, muted, page_layout, scroll_page
from studio.ui.widgets.wheel_guard import guard_field

SOURCES = (("demo", "Demo dataset", "240 short Q&&A rows, built in"),
           ("file", "File or folder", ".jsonl .json .csv .tsv .parquet .txt, or a folder"),
           ("hub", "Hugging Face hub", "A dataset id, with subset and split"))
FIELDS = ("", "instruction", "input", "output", "system", "prompt", "completion", "text", "messages", "conversations")
DEBOUNCE_MS = 250
TOKENIZER_WARNING = "Token counts need the model's tokenizer:"


class DataPage(QWidget):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._preview: Any = None
        self._tokenizer: Any = None
        self._tokenizer_error = ""
        self._rendered: list = []
        self._stats: Any = None
        self._keys: dict[str, Any] = {}
        self._trial: Optional[tuple[tuple, Any]] = None  # (data key, the data spec it replaced) until it reads
        self._rejected = ""  # why the last chosen file was not kept, shown once the previous data is back
        self._gen = {"preview": 0, "tokenizer": 0, "render": 0, "stats": 0}
        self._stats_progress: Any = None
        self._map_combos: dict[str, QComboBox] = {}

        content = QWidget()
        lay = page_layout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))
        lay.addWidget(self._build_source_card())
        lay.addWidget(self._build_format_card())
        lay.addWidget(self._build_preview_card())
        lay.addWidget(self._build_stats_card())
        lay.addWidget(self._build_split_card())
        lay.addWidget(self._build_problems_card())
        lay.addStretch(1)

        self.setAcceptDrops(True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._refresh)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self._show_config(config_model.config)
        self._refresh()

    # ---- building ---------------------------------------------------------------------------
    def _build_source_card(self) -> Card:
        card = Card("Choose your data", "Your examples, in any common format (or drop a file here); the studio "
                                        "recognises the shape.")
        row = QHBoxLayout()
        row.setSpacing(10)
        self._source_group = QButtonGroup(self)
        self._source_buttons: dict[str, QPushButton] = {}
        for key, title, hint in SOURCES:
            b = QPushButton(f"{title}\n{hint}")
            b.setProperty("choice", True)
            b.setCheckable(True)
            b.setObjectName(f"data_source_{key}")
            b.setMinimumHeight(62)
            b.setMinimumWidth(120)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # the hint may clip; not the page
            self._source_group.addButton(b)
            self._source_buttons[key] = b
            row.addWidget(b, 1)
            b.clicked.connect(lambda _=False, k=key: self._on_source_clicked(k))
        card.body.addLayout(row)
        self._source_stack = QStackedWidget()
        self._source_panels = {"demo": muted("The demo rows teach the demo model made-up ‘secret codes’, so you can "
                                             "see training work end to end in a minute."),
                               "file": self._build_file_panel(), "hub": self._build_hub_panel()}
        for panel in self._source_panels.values():
            self._source_stack.addWidget(panel)
        card.body.addWidget(self._source_stack)
        self._source_banner = Banner()
        card.body.addWidget(self._source_banner)
        return card

    def _build_file_panel(self) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 6, 0, 0)
        self._path_edit = QLineEdit()
        self._path_edit.setObjectName("data_path")
        self._path_edit.setPlaceholderText("A dataset file or a folder of them (also folders written by datasets.save_to_disk)")
        self._path_edit.returnPressed.connect(lambda: self._use_path(self._path_edit.text()))
        pick_file = QPushButton("File…")
        pick_file.clicked.connect(self._on_pick_file_clicked)
        pick_folder = QPushButton("Folder…")
        pick_folder.clicked.connect(self._on_pick_folder_clicked)
        row.addWidget(self._path_edit, 1)
        row.addWidget(pick_file)
        row.addWidget(pick_folder)
        return w

    def _build_hub_panel(self) -> QWidget:
        w = QWidget()
        row = QHBoxLayout(w)
        row.setContentsMargins(0, 6, 0, 0)
        self._hub_edit = QLineEdit()
        self._hub_edit.setObjectName("data_hub_id")
        self._hub_edit.setPlaceholderText("owner/dataset, e.g. tatsu-lab/alpaca")
        self._subset_edit = QLineEdit()
        self._subset_edit.setPlaceholderText("subset (optional)")
        self._split_edit = QLineEdit()
        self._split_edit.setPlaceholderText("split")
        load = QPushButton("Load")
        load.setProperty("primary", True)
        load.clicked.connect(self._on_hub_load_clicked)
        self._hub_edit.returnPressed.connect(self._on_hub_load_clicked)
        row.addWidget(self._hub_edit, 3)
        row.addWidget(self._subset_edit, 1)
        row.addWidget(self._split_edit, 1)
        row.addWidget(load)
        return w

    def _build_format_card(self) -> Card:
        card = Card("Format", "How rows become conversations, and which tokens the model learns from.")
        self._detect_banner = Banner()
        self._detect_banner.setObjectName("detection")
        card.body.addWidget(self._detect_banner)
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        self._format_combo = QComboBox()
        self._format_combo.addItem("Detect automatically", "auto")
        for key, title in FORMAT_TITLES.items():
            self._format_combo.addItem(title, key)
        self._format_combo.activated.connect(lambda _: self._model.set("data.format", self._format_combo.currentData()))
        self._template_combo = QComboBox()
        for key, title in (("auto", "The model's own (else ChatML)"), ("chatml", "ChatML"), ("alpaca", "Alpaca"),
                           ("llama3", "Llama 3")):
            self._template_combo.addItem(title, key)
        self._template_combo.activated.connect(
            lambda _: self._model.set("data.template", self._template_combo.currentData()))
        self._train_on_combo = QComboBox()
        self._train_on_combo.addItem("Answers only (recommended)", "completion")
        self._train_on_combo.addItem("Every token", "all")
        self._train_on_combo.activated.connect(
            lambda _: self._model.set("data.train_on", self._train_on_combo.currentData()))
        self._eos_check = QCheckBox("End each example with EOS")
        self._eos_check.setToolTip("The model learns to stop after an answer.")
        self._eos_check.toggled.connect(lambda on: self._model.set("data.add_eos", on))
        for combo in (self._format_combo, self._template_combo, self._train_on_combo):
            _shrinkable(combo)
        for col, (label, widget) in enumerate((("Shape", self._format_combo), ("Chat template", self._template_combo),
                                               ("Train on", self._train_on_combo))):
            lab = QLabel(label)
            lab.setProperty("role", "field-label")
            grid.addWidget(lab, 0, col)
            grid.addWidget(widget, 1, col)
            grid.setColumnStretch(col, 1)
        card.body.addLayout(grid)
        card.body.addWidget(self._eos_check)  # its own line: the drop-downs keep the whole width for their text
        self._map_title = muted("Columns → fields (change one to map your columns by hand)", role="faint")
        card.body.addWidget(self._map_title)
        self._map_grid = QGridLayout()
        self._map_grid.setHorizontalSpacing(14)
        self._map_grid.setVerticalSpacing(6)
        card.body.addLayout(self._map_grid)
        return card

    def _build_preview_card(self) -> Card:
        card = Card("Preview", "The first rows as they are, and exactly as the model will read them.")
        self._preview_tabs = QTabWidget()
        self._rows_model = RowsTableModel(self)
        self._rows_view = QTableView()
        self._rows_view.setModel(self._rows_model)
        self._rows_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._rows_view.setAlternatingRowColors(True)
        self._rows_view.setShowGrid(False)
        self._rows_view.setWordWrap(False)
        self._rows_view.horizontalHeader().setStretchLastSection(True)
        self._rows_view.verticalHeader().setDefaultSectionSize(26)
        self._rows_view.setMinimumHeight(240)
        self._rows_view.doubleClicked.connect(self._on_row_double_clicked)
        rendered = QWidget()
        rl = QVBoxLayout(rendered)
        rl.setContentsMargins(0, 8, 0, 0)
        bar = QHBoxLayout()
        self._row_spin = QSpinBox()
        self._row_spin.setPrefix("Example ")
        self._row_spin.setMinimum(1)
        self._row_spin.valueChanged.connect(lambda _: self._show_sample())
        self._tokens_check = QCheckBox("Show tokens")
        self._tokens_check.setObjectName("show_tokens")
        self._tokens_check.toggled.connect(lambda _: self._show_sample())
        self._sample_info = muted("", wrap=False, role="faint")
        self._sample_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # clips, never widens
        legend = QLabel(legend_html())
        bar.addWidget(self._row_spin)
        bar.addWidget(self._tokens_check)
        bar.addWidget(self._sample_info, 1)
        bar.addWidget(legend)
        rl.addLayout(bar)
        self._sample_view = QTextBrowser()
        self._sample_view.setObjectName("sample_view")
        self._sample_view.setMinimumHeight(220)
        rl.addWidget(self._sample_view)
        self._preview_tabs.addTab(rendered, "As the model sees it")
        self._preview_tabs.addTab(self._rows_view, "Raw rows")
        card.body.addWidget(self._preview_tabs)
        return card

    def _build_stats_card(self) -> Card:
        card = Card("Statistics", "Over the whole dataset, with the chosen model's tokenizer.")
        self._stats_bar = QProgressBar()
        self._stats_bar.setRange(0, 1000)
        self._stats_bar.setTextVisible(False)
        self._stats_bar.setFixedWidth(160)
        self._stats_label = muted("", wrap=False, role="faint")
        self._cancel_button = QPushButton("Cancel")
        self._cancel_button.setProperty("flat", True)
        self._cancel_button.clicked.connect(self._on_cancel_clicked)
        self._recompute_button = QPushButton("Recompute")
        self._recompute_button.setProperty("flat", True)
        self._recompute_button.clicked.connect(lambda: self._start_stats(force=True))
        for w in (self._stats_label, self._stats_bar, self._cancel_button, self._recompute_button):
            card.add_header_widget(w)
        self._stats_banner = Banner()
        card.body.addWidget(self._stats_banner)
        self.stats_view = StatsView()
        card.body.addWidget(self.stats_view)
        self._set_stats_running(False)
        return card

    def _build_split_card(self) -> Card:
        card = Card("Split and clean-up", "Held-out rows measure validation loss; the seed makes the shuffle repeatable.")
        grid = QGridLayout()
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(6)
        self._val_spin = QDoubleSpinBox()
        self._val_spin.setRange(0, 50)
        self._val_spin.setDecimals(1)
        self._val_spin.setSuffix(" %")
        self._val_spin.editingFinished.connect(
            lambda: self._model.set("data.validation_split", round(self._val_spin.value() / 100, 4)))
        val_row = QHBoxLayout()
        self._val_path_edit = QLineEdit()
        self._val_path_edit.setPlaceholderText("or a separate validation file")
        self._val_path_edit.editingFinished.connect(
            lambda: self._model.set("data.validation_path", self._val_path_edit.text().strip()))
        val_browse = QPushButton("Browse…")
        val_browse.clicked.connect(self._on_pick_val_file_clicked)
        val_row.addWidget(self._val_path_edit, 1)
        val_row.addWidget(val_browse)
        self._seed_spin = QSpinBox()
        self._seed_spin.setRange(0, 2**31 - 1)
        self._seed_spin.editingFinished.connect(lambda: self._model.set("data.shuffle_seed", self._seed_spin.value()))
        self._dedup_check = QCheckBox("Drop exact duplicates")
        self._dedup_check.toggled.connect(lambda on: self._model.set("data.dedup", on))
        self._packing_check = QCheckBox("Pack short examples into full sequences")
        self._packing_check.toggled.connect(lambda on: self._model.set("data.packing", on))
        self._dedup_note = muted("", role="faint")
        self._packing_note = muted("", role="faint")
        cells = (("Validation share", self._val_spin), ("Validation file", val_row), ("Shuffle seed", self._seed_spin))
        for col, (label, w) in enumerate(cells):
            lab = QLabel(label)
            lab.setProperty("role", "field-label")
            grid.addWidget(lab, 0, col)
            if isinstance(w, QHBoxLayout):
                grid.addLayout(w, 1, col)
            else:
                grid.addWidget(w, 1, col)
        grid.setColumnStretch(1, 2)
        grid.addWidget(self._dedup_check, 2, 0)
        grid.addWidget(self._dedup_note, 3, 0)
        grid.addWidget(self._packing_check, 2, 1, 1, 2)
        grid.addWidget(self._packing_note, 3, 1, 1, 2)
        card.body.addLayout(grid)
        return card

    def _build_problems_card(self) -> Card:
        self._problems_card = Card("Problems", "")
        self._problems_table = QTableWidget(0, 2)
        self._problems_table.setObjectName("problems")
        self._problems_table.setHorizontalHeaderLabels(["Where", "What, and how to fix it"])
        self._problems_table.verticalHeader().hide()
        self._problems_table.setShowGrid(False)
        self._problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._problems_table.setWordWrap(True)
        self._problems_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self._problems_table.horizontalHeader().setStretchLastSection(True)
        self._problems_card.body.addWidget(self._problems_table)
        return self._problems_card

    # ---- config -> widgets --------------------------------------------------------------------
    def _show_config(self, config: RunConfig) -> None:
        d = config.data
        self._source_buttons[d.source].setChecked(True)
        self._source_stack.setCurrentWidget(self._source_panels[d.source])
        if d.source == "file" and self._path_edit.text() != d.path:
            self._path_edit.setText(d.path)
        if d.source == "hub":
            self._hub_edit.setText(d.path)
            self._subset_edit.setText(d.subset or "")
        self._split_edit.setText(d.split)
        for combo, value in ((self._format_combo, d.format), (self._template_combo, d.template),
                             (self._train_on_combo, d.train_on)):
            combo.setCurrentIndex(max(0, combo.findData(value)))
        for w, value in ((self._eos_check, d.add_eos), (self._dedup_check, d.dedup), (self._packing_check, d.packing)):
            w.blockSignals(True)
            w.setChecked(value)
            w.blockSignals(False)
        if not self._val_spin.hasFocus():
            self._val_spin.setValue(d.validation_split * 100)
        if not self._val_path_edit.hasFocus():
            self._val_path_edit.setText(d.validation_path)
        self._val_spin.setEnabled(not d.validation_path)
        if not self._seed_spin.hasFocus():
            self._seed_spin.setValue(d.shuffle_seed)

    def _on_config_changed(self, config: RunConfig) -> None:
        self._show_config(config)
        self._timer.start()

    # ---- user actions ---------------------------------------------------------------------------
    def _on_source_clicked(self, key: str) -> None:
        self._source_stack.setCurrentWidget(self._source_panels[key])
        if key == "demo":
            self._model.update({"data.source": "demo", "data.path": ""})
        elif key == "file" and self._path_edit.text().strip():
            self._use_path(self._path_edit.text())
        elif key == "hub" and self._hub_edit.text().strip():
            self._on_hub_load_clicked()

    def _on_pick_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a dataset file", self._path_edit.text(),
                                              "Datasets (*.jsonl *.json *.csv *.tsv *.parquet *.txt);;All files (*)")
        if path:
            self._path_edit.setText(path)
            self._use_path(path)

    def _on_pick_folder_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder of dataset files", self._path_edit.text())
        if path:
            self._path_edit.setText(path)
            self._use_path(path)

    def _on_pick_val_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a validation file", self._val_path_edit.text(),
                                              "Datasets (*.jsonl *.json *.csv *.tsv *.parquet *.txt);;All files (*)")
        if path:
            self._val_path_edit.setText(path)
            self._model.set("data.validation_path", path)

    def _use_path(self, path: str) -> None:
        path = path.strip()
        if not path:
            self._source_banner.show_message("Choose a file or folder first.", "warn")
            return
        # A new file keeps the user's settings; only a hand mapping for other columns is stale, and it
        # stays until the user changes it (the detection banner says if it no longer fits).
        previous = self._model.config.data
        if self._model.update({"data.source": "file", "data.path": path}):
            # On trial until its first rows are read: a file that cannot be read at all (an image saved
            # as .jsonl) is not kept as the run's data; the previous choice comes back (issue #13).
            self._trial = (jobs.data_key(self._model.config), previous)

    def use_path(self, path: str) -> None:
        """Select a dataset file or folder (also used by drag-and-drop and tests)."""
        self._source_buttons["file"].setChecked(True)
        self._source_stack.setCurrentWidget(self._source_panels["file"])
        self._path_edit.setText(path)
        self._use_path(path)

    def _on_hub_load_clicked(self) -> None:
        hub_id = self._hub_edit.text().strip()
        if hub_id.count("/") != 1 or " " in hub_id:
            self._source_banner.show_message("Enter a hub dataset id like owner/name (e.g. tatsu-lab/alpaca).", "warn")
            return
        previous = self._model.config.data
        if self._model.update({"data.source": "hub", "data.path": hub_id,
                               "data.subset": self._subset_edit.text().strip() or None,
                               "data.split": self._split_edit.text().strip() or "train"}):
            self._trial = (jobs.data_key(self._model.config), previous)  # kept only once its first rows are read

    def _on_map_changed(self) -> None:
        mapping = {col: combo.currentData() for col, combo in self._map_combos.items()
                   if combo.currentData() and combo.currentData() != col}
        self._model.set("data.column_map", mapping)

    def _on_row_double_clicked(self, index) -> None:
        self._row_spin.setValue(index.row() + 1)
        self._preview_tabs.setCurrentIndex(0)

    def _on_cancel_clicked(self) -> None:
        if self._stats_progress is not None:
            self._stats_progress.cancel()
            self._stats_label.setText("cancelling…")

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            self.use_path(files[0])
            event.acceptProposedAction()

    # ---- background work ------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Start whatever the last config change made stale (each job only when its inputs changed)."""
        config = self._model.config
        if self._keys.get("preview") != jobs.data_key(config):
            self._keys["preview"] = jobs.data_key(config)
            self._start("preview", lambda _p: jobs.preview_job(config), self._on_preview_done, self._on_preview_failed)
            self._source_banner.show_message("Reading the first rows…", "info")
        if self._keys.get("tokenizer") != jobs.model_key(config):
            self._keys["tokenizer"] = jobs.model_key(config)
            self._tokenizer = None
            self._tokenizer_error = ""
            self._start("tokenizer", lambda _p: jobs.tokenizer_job(config), self._on_tokenizer_done,
                        self._on_tokenizer_failed)
        self._start_render()
        self._start_stats()

    def _start(self, kind: str, fn, on_done, on_failed, on_progress=None) -> None:
        self._gen[kind] += 1
        gen = self._gen[kind]
        start_task(fn, on_done=lambda r: self._gen[kind] == gen and on_done(r),
                   on_failed=lambda m: self._gen[kind] == gen and on_failed(m),
                   on_progress=(lambda c, t, label: self._gen[kind] == gen and on_progress(c, t, label))
                   if on_progress else None)

    def _start_render(self) -> None:
        config = self._model.config
        if self._preview is None or self._keys.get("preview_done") != jobs.data_key(config):
            return
        key = jobs.render_key(config) + (self._tokenizer is not None,)
        if self._keys.get("render") == key:
            return
        self._keys["render"] = key
        preview, tok = self._preview, self._tokenizer
        self._start("render", lambda _p: jobs.render_job(preview, config, tok), self._on_render_done,
                    lambda m: self._sample_view.setHtml(f"<p style='color:#ff9a9a'>{m}</p>"))

    def _start_stats(self, force: bool = False) -> None:
        config = self._model.config
        if self._tokenizer is None or self._preview is None:
            return
        key = jobs.stats_key(config)
        if self._keys.get("stats") == key and not force:
            return
        self._keys["stats"] = key
        if self._stats_progress is not None:
            self._stats_progress.cancel()
        tok = self._tokenizer
        holder: dict[str, Any] = {}

        def run(report):
            holder["progress"] = progress = jobs.progress_for(report)
            self._stats_progress = progress
            return jobs.stats_job(config, tok, progress)

        self._set_stats_running(True)
        self._stats_banner.show_message("")
        self._stats_label.setText("reading…")
        self._start("stats", run, self._on_stats_done, self._on_stats_failed, self._on_stats_progress)

    def _set_stats_running(self, running: bool) -> None:
        self._stats_bar.setVisible(running)
        self._cancel_button.setVisible(running)
        self._recompute_button.setVisible(not running and self._tokenizer is not None)
        if running:
            self._stats_bar.setValue(0)

    # ---- results ------------------------------------------------------------------------------
    def _on_preview_done(self, preview: Any) -> None:
        self._trial = None
        self._preview = preview
        self._keys["preview_done"] = jobs.data_key(self._model.config)
        self._rows_model.set_preview(preview)
        self._rows_view.resizeColumnsToContents()
        for c in range(self._rows_model.columnCount()):
            self._rows_view.setColumnWidth(c, min(self._rows_view.columnWidth(c), 360))
        more = "" if preview.complete else " (the first rows; statistics read everything)"
        self._source_banner.show_message(f"{preview.source}: showing {len(preview.rows):,} rows{more}.", "ok")
        if self._rejected:
            self._source_banner.show_message(self._rejected, "error")
            self._rejected = ""
        self._show_detection()
        self._show_mapping()
        self._row_spin.setMaximum(max(1, min(len(preview.rows), 20)))
        self._show_problems()
        self._start_render()
        self._start_stats()

    def _on_preview_failed(self, message: str) -> None:
        trial, self._trial = self._trial, None
        if trial is not None and trial[0] == jobs.data_key(self._model.config):
            _key, previous = trial
            kept = {"demo": "the demo dataset", "hub": previous.path}.get(previous.source) or Path(previous.path).name
            what = "dataset" if self._model.config.data.source == "hub" else "file"
            self._rejected = f"{message} This {what} is not used; the run keeps {kept}."
            self._model.update({"data": previous.model_dump(mode="json")})
            return
        self._preview = None
        self._keys["preview_done"] = None
        self._rows_model.set_preview(None)
        self._rendered = []
        self._sample_view.setHtml("")
        self._source_banner.show_message(message, "error")
        self._detect_banner.show_message("")
        self._clear_mapping()
        self.stats_view.clear()
        self._stats = None
        self._show_problems()

    def _on_tokenizer_done(self, tokenizer: Any) -> None:
        if self._stats_banner.text().startswith(TOKENIZER_WARNING):
            self._stats_banner.show_message("")  # the previous model's warning; the statistics below are current
        self._tokenizer = tokenizer
        self._tokenizer_error = ""
        self._show_detection()
        self._start_render()
        self._start_stats()

    def _on_tokenizer_failed(self, message: str) -> None:
        self._tokenizer_error = message
        self._show_detection()
        self._show_sample()
        self._stats_banner.show_message(f"{TOKENIZER_WARNING} {message}", "warn")
        self._set_stats_running(False)

    def _on_render_done(self, rendered: list) -> None:
        self._rendered = rendered
        self._show_sample()

    def _on_stats_progress(self, current: int, total: int, label: str) -> None:
        self._stats_bar.setValue(current)
        self._stats_label.setText(label)

    def _on_stats_done(self, result: Any) -> None:
        self._stats_progress = None
        self._set_stats_running(False)
        if result.cancelled:
            self._stats_label.setText("cancelled")
            self._keys["stats"] = None
            return
        s = self._stats = result.stats
        t = self._model.config.training
        self._stats_label.setText("")
        self.stats_view.show_stats(s, t.batch_size, t.grad_accum)
        self._detect_banner.show_message(f"{s.detection.title}: {s.detection.evidence}",
                                         "ok" if s.usable == s.rows else "warn")
        if not s.trainable:
            self._stats_banner.show_message("No row can be trained on. The problems below say why and how to fix it.",
                                            "error")
        elif s.truncated or s.dropped:
            self._stats_banner.show_message(
                f"{s.truncated + s.dropped:,} rows are longer than the max length ({s.max_len:,} tokens): "
                f"{s.tokens_lost:,} tokens are cut off{f', and {s.dropped:,} rows lose their whole answer and are dropped' if s.dropped else ''}. "
                "Raise Max length on the Method page to keep them.", "warn")
        else:
            self._stats_banner.show_message("")
        self._dedup_note.setText(f"{s.duplicates:,} duplicates found" if self._model.config.data.dedup
                                 else "duplicates are kept")
        self._packing_note.setText(
            f"{s.train_rows:,} rows → {s.sequences:,} sequences, {s.packing_efficiency:.0%} of each filled"
            if s.packing and s.packing_efficiency is not None else
            "Fewer, fuller sequences: faster when examples are much shorter than the max length.")
        self._show_problems()

    def _on_stats_failed(self, message: str) -> None:
        self._stats_progress = None
        self._set_stats_running(False)
        self._stats_label.setText("")
        self._stats = None
        self.stats_view.clear()
        self._stats_banner.show_message(message, "error")

    # ---- showing --------------------------------------------------------------------------------
    def _show_detection(self) -> None:
        p = self._preview
        if p is None:
            return
        if p.detection is None:
            self._detect_banner.show_message(p.detection_error, "error")
            return
        d = p.detection
        fits = d.matched == d.sampled
        template = jobs.describe_template(self._model.config, self._tokenizer, bool(self._tokenizer_error))
        self._detect_banner.show_message(f"{d.title}: {d.evidence}. Rendered with {template}.", "ok" if fits else "warn")

    def _clear_mapping(self) -> None:
        while self._map_grid.count():
            item = self._map_grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._map_combos = {}

    def _show_mapping(self) -> None:
        self._clear_mapping()
        p = self._preview
        mapping = p.detection.column_map if p.detection else self._model.config.data.column_map
        cols = 4
        for i, column in enumerate(p.columns[:24]):
            combo = QComboBox()
            for f in FIELDS:
                combo.addItem(f"→ {f}" if f else "(not used / as is)", f)
            target = mapping.get(column, column if column in FIELDS else "")
            combo.setCurrentIndex(max(0, combo.findData(target)))
            combo.activated.connect(lambda _: self._on_map_changed())
            guard_field(combo)
            _shrinkable(combo)
            label = QLabel(column)
            label.setProperty("role", "field-label")
            r, c = divmod(i, cols)
            self._map_grid.addWidget(label, r * 2, c)
            self._map_grid.addWidget(combo, r * 2 + 1, c)
            self._map_combos[column] = combo
        for c in range(cols):
            self._map_grid.setColumnStretch(c, 1)
        self._map_title.setVisible(bool(p.columns))

    def _show_sample(self) -> None:
        i = self._row_spin.value() - 1
        if not self._rendered or i >= len(self._rendered):
            self._sample_view.setHtml("")
            self._sample_info.setText("")
            return
        r = self._rendered[i]
        where = f"{r.location[0].rsplit('/', 1)[-1]}:{r.location[1]}"
        if r.problem:
            self._sample_view.setHtml(f"<p style='color:#ff9a9a'>{where}: {r.problem}</p>")
            self._sample_info.setText("this row is skipped")
            return
        max_len = self._model.config.training.max_seq_len
        if self._tokens_check.isChecked() and r.tokens is not None:
            self._sample_view.setHtml(tokens_html(r.tokens, max_len))
        else:
            self._sample_view.setHtml(pieces_html(r.pieces))
        if r.tokens is not None:
            cut = f" · cut at {max_len:,}" if r.truncated else ""
            self._sample_info.setText(f"{where} · {r.n_tokens:,} tokens, {r.n_loss:,} carry loss{cut}")
        elif self._tokenizer_error:
            self._sample_info.setText(f"{where} · no token view: the model's tokenizer can't be read")
        else:
            self._sample_info.setText(f"{where} · loading the tokenizer…")

    def _show_problems(self) -> None:
        if self._stats is not None:
            problems, count = self._stats.problems, self._stats.problem_count
        elif self._preview is not None:
            problems, count = self._preview.problems, len(self._preview.problems)
        else:
            problems, count = [], 0
        self._problems_table.setRowCount(len(problems))
        for row, p in enumerate(problems):
            where = p.file.rsplit("/", 1)[-1] + (f":{p.line}" if p.line else "") if p.file else \
                (f"row {p.line}" if p.line else "")
            for col, text in enumerate((where, p.message)):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{p.file}:{p.line}" if col == 0 and p.file else text)
                self._problems_table.setItem(row, col, item)
        self._problems_table.resizeRowsToContents()
        self._problems_table.setVisible(bool(problems))
        rows_h = sum(self._problems_table.rowHeight(r) for r in range(min(len(problems), 12)))
        self._problems_table.setFixedHeight(min(360, self._problems_table.horizontalHeader().height() + rows_h + 6))
        listed = f" ({len(problems):,} listed)" if count > len(problems) else ""
        self._problems_card.set_subtitle(f"{count:,} problem{'s' if count != 1 else ''}{listed}; "
                                         "rows with problems are skipped, the rest train." if count else
                                         "None found.")

    # ---- for tests and other pages ------------------------------------------------------------------
    @property
    def preview(self) -> Any:
        return self._preview

    @property
    def stats(self) -> Any:
        return self._stats

    @property
    def rendered(self) -> list:
        return self._rendered

    def sample_html(self) -> str:
        return self._sample_view.toHtml()

    def problem_rows(self) -> list[tuple[str, str]]:
        t = self._problems_table
        return [(t.item(r, 0).text(), t.item(r, 1).text()) for r in range(t.rowCount())]

    def mapping_combo(self, column: str) -> Optional[QComboBox]:
        return self._map_combos.get(column)


def _shrinkable(combo: QComboBox) -> None:
    """A drop-down as narrow as its column allows (its list still shows whole items): the page fits 1280 px."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
