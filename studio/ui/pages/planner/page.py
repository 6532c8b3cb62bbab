"""PlannerPage: pick a GPU and a model, see which methods fit at which micro-batch and length.

The model is the run's own, one from the Hugging Face cache (scanned in the background), one
from the bundled catalog of public configs, or any local folder. The table comes from
``studio.core.vram.plan.plan_table`` with the run's other training settings; "Use this" writes
the chosen method, length and micro-batch into the run config, and switches the run's model to
the planned one only when asked (saying whether it is downloaded); "Export CSV" saves the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QHeaderView,
                               QLabel, QMessageBox, QPushButton, QTableView, QWidget)

from studio.core.methods import method_names
from studio.core.models import (ModelError, ModelFacts, catalog_facts, catalog_names, find_in_hf_cache, inspect_model,
                                 resolve_facts)
from studio.core.vram import machine_here
from studio.core.vram.gpus import GPU_CATALOG, Target, detected_target, find_gpu, target_for_spec
from studio.core.vram.plan import PLAN_METHODS, PlanTable, gpu_fits, plan_table
from studio.ui.config_model import ConfigModel
from studio.ui.pages.planner.table_model import PlanCellDelegate, PlanTableModel
from studio.ui.tasks import JobSlot
from studio.ui.widgets.card import Banner, Card, fmt_bytes, fmt_params, muted, page_layout, scroll_page

CURRENT = "current"  # model-combo data: "current", "catalog:<id>", "cache:<id>", "folder:<path>"
DETECTED = "__detected__"
DEFAULT_CARD = "RTX 4090 24GB"
SWITCH_MODEL, SWITCH_KEEP, SWITCH_CANCEL = "switch", "keep", "cancel"


class PlannerPage(QWidget):
    def __init__(self, config_model: ConfigModel, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self._model = config_model
        self._run_facts: Optional[ModelFacts] = None
        self._facts: Optional[ModelFacts] = None
        self._target: Optional[Target] = None
        self._cache_paths: dict[str, str] = {}
        self._folders: list[str] = []
        self._cache_scan = JobSlot()
        self.plan: Optional[PlanTable] = None

        content = QWidget()
        lay = page_layout(content)

        choose = Card("What to plan for", "A GPU and a model: yours, or any you are considering.")
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(10)
        grid.addWidget(_field_label("Model"), 0, 0)
        self.model_combo = QComboBox()
        self.model_combo.setMinimumContentsLength(28)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        grid.addWidget(self.model_combo, 0, 1)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Plan for a Hugging Face model folder on this computer (only config.json is read).")
        self.folder_button.clicked.connect(self._on_folder_clicked)
        grid.addWidget(self.folder_button, 0, 2)
        grid.addWidget(_field_label("GPU"), 1, 0)
        self.gpu_combo = QComboBox()
        self.gpu_combo.setMinimumContentsLength(28)
        self.gpu_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        grid.addWidget(self.gpu_combo, 1, 1)
        self.budget_label = muted("", wrap=False)
        grid.addWidget(self.budget_label, 1, 2)
        grid.setColumnStretch(1, 1)
        choose.body.addLayout(grid)
        self.facts_label = muted("", role="faint")
        choose.body.addWidget(self.facts_label)
        lay.addWidget(choose)

        table_card = Card("Largest micro-batch that fits",
                          "Sequences per micro-batch, by method and maximum length. '—' does not fit at all.")
        self.banner = Banner()
        table_card.body.addWidget(self.banner)
        self.table_model = PlanTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setItemDelegate(PlanCellDelegate(self.table))
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(36)
        self.table.verticalHeader().setStyleSheet(
            "QHeaderView::section { text-transform: none; font-size: 13px; font-weight: 500; color: #d5dae3;"
            " padding-left: 12px; padding-right: 18px; }")
        self.table.setShowGrid(False)
        self.table.setCornerButtonEnabled(False)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.doubleClicked.connect(lambda _i: self._on_use_clicked())
        table_card.body.addWidget(self.table)
        self.notes_label = muted("", role="faint")
        table_card.body.addWidget(self.notes_label)
        buttons = QHBoxLayout()
        self.selection_label = muted("Select a cell to use that method, length and micro-batch.", wrap=False)
        buttons.addWidget(self.selection_label, 1)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self._on_csv_clicked)
        buttons.addWidget(self.csv_button)
        self.use_button = QPushButton("Use this")
        self.use_button.setProperty("primary", True)
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._on_use_clicked)
        buttons.addWidget(self.use_button)
        table_card.body.addLayout(buttons)
        lay.addWidget(table_card)

        cards = Card("Cards for this run as configured",
                     "The run's own method, micro-batch and length on every card in the list, smallest first.")
        self.cards_label = muted("")
        self.cards_label.setTextFormat(Qt.TextFormat.RichText)
        cards.body.addWidget(self.cards_label)
        lay.addWidget(cards)
        lay.addStretch(1)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(80)
        self._timer.timeout.connect(self.refresh)

        self._fill_gpus()
        self._fill_models([])
        self.gpu_combo.currentIndexChanged.connect(self._on_gpu_changed)
        self.model_combo.currentIndexChanged.connect(self._on_model_changed)
        config_model.sig_config_changed.connect(lambda _c: self._timer.start())
        self._on_gpu_changed()
        self._on_model_changed()
        self._scan_cache()

    # ---- choices ---------------------------------------------------------------------------
    def _fill_gpus(self) -> None:
        det = detected_target()
        if det is not None:
            self.gpu_combo.addItem(f"This machine: {det.label.replace(' (this machine)', '')}", DETECTED)
        for spec in GPU_CATALOG:
            self.gpu_combo.addItem(f"{spec.name}", spec.name)
        if det is None:
            self.gpu_combo.setCurrentIndex(max(0, self.gpu_combo.findData(DEFAULT_CARD)))

    def _fill_models(self, cached: list[Any]) -> None:
        current = self.model_combo.currentData()
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem("This run's model", CURRENT)
        for f in cached:
            self._cache_paths[f.name] = f.path
            self.model_combo.addItem(f"{f.name}  (downloaded)", f"cache:{f.name}")
        for name in catalog_names():
            self.model_combo.addItem(name, f"catalog:{name}")
        for path in self._folders:
            self.model_combo.addItem(Path(path).name + "  (folder)", f"folder:{path}")
        idx = self.model_combo.findData(current) if current is not None else 0
        self.model_combo.setCurrentIndex(max(0, idx))
        self.model_combo.blockSignals(False)

    def _scan_cache(self) -> None:
        from studio.core.models import scan_hf_cache

        self._cache_scan.start(lambda _state: scan_hf_cache(), self._on_cache_scanned, self._on_cache_scan_failed)

    def _on_cache_scanned(self, models: list[Any]) -> None:
        self._fill_models(models)

    def _on_cache_scan_failed(self, message: str) -> None:
        self.banner.show_message(f"The Hugging Face cache could not be read ({message}); the catalog models and "
                                 "this run's model are listed.", "warn")

    def set_target_name(self, name: str) -> None:
        spec = find_gpu(name) if name != DETECTED else None
        idx = self.gpu_combo.findData(DETECTED if name == DETECTED else (spec.name if spec else name))
        if idx >= 0:
            self.gpu_combo.setCurrentIndex(idx)

    def set_model_choice(self, key: str) -> None:
        """Select a model entry: "current", "catalog:<hub id>", "cache:<hub id>" or "folder:<path>"."""
        if key.startswith("folder:") and self.model_combo.findData(key) < 0:
            self._folders.append(key[len("folder:"):])
            self.model_combo.addItem(Path(key[len("folder:"):]).name + "  (folder)", key)
        idx = self.model_combo.findData(key)
        if idx >= 0:
            self.model_combo.setCurrentIndex(idx)

    def set_model_facts(self, facts: Optional[ModelFacts]) -> None:
        """The run's model facts as the model page read them (MainWindow calls this)."""
        self._run_facts = facts
        if self.model_combo.currentData() == CURRENT:
            self._on_model_changed()

    # ---- slots -----------------------------------------------------------------------------
    def _on_gpu_changed(self, *_: Any) -> None:
        data = self.gpu_combo.currentData()
        if data == DETECTED:
            self._target = detected_target()
        else:
            spec = find_gpu(str(data))
            self._target = target_for_spec(spec) if spec else None
        self.budget_label.setText(f"{fmt_bytes(self._target.budget_bytes)} usable" if self._target else "")
        self.refresh()

    def _on_model_changed(self, *_: Any) -> None:
        key = str(self.model_combo.currentData() or CURRENT)
        kind, _, value = key.partition(":")
        error = ""
        facts = None
        try:
            if kind == CURRENT:
                spec = self._model.config.model
                facts = self._run_facts or resolve_facts(spec.source, spec.path)
            elif kind == "catalog":
                facts = catalog_facts(value)
            elif kind == "cache":
                facts = inspect_model(self._cache_paths[value], name=value, hub_id=value)
            else:
                facts = inspect_model(value)
        except (ModelError, OSError) as e:
            error = str(e)
        self._facts = facts
        if facts is not None:
            ctx = f" · context {facts.max_position_embeddings:,}" if facts.max_position_embeddings else ""
            self.facts_label.setText(
                f"{facts.name} · {facts.architecture or facts.model_type} · {fmt_params(facts.num_params)} parameters · "
                f"{facts.num_layers} layers · vocabulary {facts.vocab_size:,}{ctx}")
        else:
            self.facts_label.setText("")
        self.banner.show_message(f"Cannot plan: {error}" if error else "", "warn")
        self.refresh()

    def refresh(self) -> None:
        self._timer.stop()
        if self._facts is None or self._target is None:
            self.plan = None
            self.table_model.set_table(None)
            self.notes_label.setText("")
            self._update_use_button()
            return
        self.plan = plan_table(self._facts, self._target.budget_bytes, base_config=self._model.config,
                               bf16_supported=self._target.bf16, machine=machine_here())
        self.table_model.set_table(self.plan)
        self._fit_table_height()
        t = self._model.config.training
        self.notes_label.setText(
            f"With this run's settings: checkpointing {t.gradient_checkpointing}, loss {t.loss_impl}, "
            f"optimizer {t.optimizer}, precision {t.precision}. QLoRA and 8-bit optimizers need an NVIDIA GPU; "
            "limits include a small safety margin.")
        self._update_use_button()
        self._show_cards()

    def _show_cards(self) -> None:
        t = self._model.config.training
        fits = [f for f in gpu_fits(self._model.config, self._facts, machine=machine_here()) if f.fits]
        method = self._model.config.method
        title = getattr(getattr(type(method), "info", None), "title", method.name)
        setting = f"{title}, micro-batch {t.batch_size} x {t.max_seq_len} tokens"
        if not fits:
            self.cards_label.setText(f"{setting}: no card in the list has enough memory. Try the suggestions "
                                     "on the Method page, or QLoRA.")
            return
        names = ", ".join(f"<b>{f.gpu.name}</b>" for f in fits[:6])
        more = f" and {len(fits) - 6} larger" if len(fits) > 6 else ""
        self.cards_label.setText(f"{setting} needs about {fmt_bytes(fits[0].device_used)} on a "
                                 f"{fits[0].gpu.name}. It fits on {names}{more}.")

    def _fit_table_height(self) -> None:
        rows = self.table_model.rowCount()
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + rows * self.table.verticalHeader().defaultSectionSize() + 6)

    def _selected(self) -> Optional[tuple[int, int]]:
        idx = self.table.selectionModel().currentIndex() if self.table.selectionModel() else None
        if idx is None or not idx.isValid() or not self.table.selectionModel().isSelected(idx):
            return None
        return idx.row(), idx.column()

    def select_cell(self, row: int, col: int) -> None:
        index = self.table_model.index(row, col)
        self.table.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _on_selection_changed(self, *_: Any) -> None:
        self._update_use_button()

    def _update_use_button(self) -> None:
        sel = self._selected()
        ok, text = False, "Select a cell to use that method, length and micro-batch."
        if sel and self.plan:
            row, col = sel
            r = self.plan.rows[row]
            b = r.max_batch[col]
            seq = self.plan.seq_lens[col]
            if b <= 0:
                text = f"{r.title} does not fit at {seq} tokens."
            elif r.method not in method_names():
                text = f"{r.title} is shown for comparison; the studio does not offer it yet."
            else:
                ok, text = True, f"{r.title}, {seq} tokens, micro-batch {b}"
                switch = self._model_switch()
                if switch is not None:
                    text += f" (planned for {switch[1]})"
        self.use_button.setEnabled(ok)
        self.selection_label.setText(text)

    def _on_use_clicked(self) -> None:
        sel = self._selected()
        if not sel or not self.plan or not self.use_button.isEnabled():
            return
        row, col = sel
        r = self.plan.rows[row]
        seq, batch = self.plan.seq_lens[col], r.max_batch[col]
        fields = dict(next((f for n, _t, f in PLAN_METHODS if n == r.method), {}))
        values: dict[str, Any] = {}
        switch = self._model_switch()
        note = ""
        if switch is not None:
            spec, name, downloaded = switch
            choice = self.ask_model_switch(f"{r.title}, {seq} tokens, micro-batch {batch}", name, downloaded)
            if choice == SWITCH_CANCEL:
                return
            if choice == SWITCH_MODEL:
                values["model"] = spec
                note = "" if downloaded else (f" {name} is not downloaded yet: download it on the Model page "
                                              "before training.")
            else:
                note = (f" They were planned for {name}; the Method page's memory estimate checks them for "
                        f"{self._run_model_name()}.")
        self._model.set_method(r.method)
        method = {**self._model.config.method.model_dump(mode="json"), **fields}
        values.update({"method": method, "training.max_seq_len": seq, "training.batch_size": batch})
        if not self._model.update(values):
            errors = "; ".join(self._model.error_lines(values))
            self.banner.show_message(f"Could not apply: {errors}", "error")
            return
        self.banner.show_message(f"The run now trains {self._run_model_name()} with {r.title} at {seq} tokens, "
                                 f"micro-batch {batch}.{note}", "warn" if note and "not downloaded" in note else "ok")

    def _model_switch(self) -> Optional[tuple[dict[str, str], str, bool]]:
        """(model spec, name, downloaded) when the planned model is not the run's own; else None."""
        kind, _, value = str(self.model_combo.currentData() or CURRENT).partition(":")
        if kind in ("catalog", "cache"):
            spec = {"source": "hub", "path": value}
            downloaded = kind == "cache" or find_in_hf_cache(value) is not None
        elif kind == "folder":
            spec, downloaded = {"source": "local", "path": value}, True
        else:
            return None
        current = self._model.config.model
        if (current.source, current.path) == (spec["source"], spec["path"]):
            return None
        return spec, value if kind != "folder" else Path(value).name, downloaded

    def _run_model_name(self) -> str:
        m = self._model.config.model
        return "the demo model" if m.source == "demo" else m.path

    def ask_model_switch(self, setting: str, model_name: str, downloaded: bool) -> str:
        """Ask whether "Use this" also switches the run's model; tests replace this method."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Use this plan")
        box.setText(f"{setting} was planned for {model_name}, but the run trains {self._run_model_name()}.")
        where = ("It is in your Hugging Face cache." if downloaded else
                 "It is not downloaded yet: the Model page can download it, and Train refuses to start until then.")
        box.setInformativeText(f"Switch the run to {model_name} as well? {where}")
        switch = box.addButton(f"Switch to {model_name}", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton(f"Keep {self._run_model_name()}", QMessageBox.ButtonRole.RejectRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        box.exec()
        clicked = box.clickedButton()
        return SWITCH_MODEL if clicked is switch else SWITCH_KEEP if clicked is keep else SWITCH_CANCEL

    def _on_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (with config.json)")
        if folder:
            self.set_model_choice(f"folder:{folder}")

    def _on_csv_clicked(self) -> None:
        if not self.plan:
            return
        name = (self._facts.name if self._facts else "plan").replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Export the plan", f"{name}-plan.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> None:
        try:
            Path(path).write_text(self.plan.to_csv() if self.plan else "", encoding="utf-8")
        except OSError as e:
            self.banner.show_message(f"Could not write {path}: {e.strerror or e}", "error")
            return
        self.banner.show_message(f"Saved {path}", "ok")


def _field_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setProperty("role", "field-label")
    return label
