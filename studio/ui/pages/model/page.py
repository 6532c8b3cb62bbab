"""ModelPage: choose which base model to fine-tune and see what the studio knows about it.

Four sources: the embedded demo, a local Hugging Face folder, a model already in the HF cache
(scanned in the background), or a hub id downloaded into the cache. Choosing one writes
``model.source``/``model.path`` into the ConfigModel, applies training defaults that suit the
model, and publishes the model's facts (``sig_model_facts_changed``) for other pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QFileDialog, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QSizePolicy, QPushButton, QTableView, QVBoxLayout, QWidget)

from studio.core.config import RunConfig
from studio.core.training_defaults import suggested_settings
from studio.ui.config_model import ConfigModel
from studio.ui.pages.model.cache_table import CacheTableModel
from studio.ui.tasks import JobSlot
from studio.ui.widgets.card import Banner, Card, fmt_bytes, fmt_params, muted, page_layout, scroll_page

if TYPE_CHECKING:
    from studio.core.models import ModelFacts

SOURCES = (
    ("demo", "Demo model", "Tiny, built in, trains on any CPU"),
    ("local", "Local folder", "A model folder on this computer"),
    ("cache", "Hugging Face cache", "Models you already downloaded"),
    ("hub", "Download from the hub", "Any model id on huggingface.co"),
)


def _models():
    # Imported on first use: the catalog module is not needed to show the window.
    from studio.core import models

    return models


class ModelPage(QWidget):
    sig_model_facts_changed = Signal(object)  # ModelFacts, or None when the model cannot be read

    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._facts: Optional[ModelFacts] = None
        self._facts_key: tuple[str, str] | None = None
        self._scan = JobSlot()  # the HF cache scan
        self._download = JobSlot()  # a hub download: Cancel ends its child process
        self._hub_check = JobSlot()  # is the hub reachable (asked when the hub panel opens)
        self._download_cancelled = False
        self._applying = False

        content = QWidget()
        lay = page_layout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))

        choose = Card("Choose a base model", "The adapter you train sits on top of this model; its weights stay frozen.")
        row = QHBoxLayout()
        row.setSpacing(10)
        self._source_group = QButtonGroup(self)
        self._source_buttons: dict[str, QPushButton] = {}
        for key, title, hint in SOURCES:
            b = QPushButton(f"{title}\n{hint}")
            b.setProperty("choice", True)
            b.setCheckable(True)
            b.setObjectName(f"source_{key}")
            b.setMinimumHeight(62)
            b.setMinimumWidth(120)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self._source_group.addButton(b)
            self._source_buttons[key] = b
            row.addWidget(b, 1)
            b.clicked.connect(lambda _=False, k=key: self._on_source_clicked(k))
        choose.body.addLayout(row)
        # Panels are shown one at a time (not a stacked widget, whose height is the tallest panel's).
        self._panels = {"demo": self._build_demo_panel(), "local": self._build_local_panel(),
                        "cache": self._build_cache_panel(), "hub": self._build_hub_panel()}
        for panel in self._panels.values():
            choose.body.addWidget(panel)
        lay.addWidget(choose)

        self._facts_card = Card("About this model")
        self._facts_grid = QGridLayout()
        self._facts_grid.setHorizontalSpacing(28)
        self._facts_grid.setVerticalSpacing(10)
        self._facts_card.body.addLayout(self._facts_grid)
        self._facts_banner = Banner()
        self._facts_card.body.addWidget(self._facts_banner)
        lay.addWidget(self._facts_card)
        lay.addStretch(1)

        config_model.sig_config_changed.connect(self._on_config_changed)
        self._show_source_for(config_model.config)
        self._refresh_facts(config_model.config)

    # ---- panels -------------------------------------------------------------------------
    def _build_demo_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.addWidget(muted("A tiny Llama-style model with random weights and a matching dataset ship with the studio, "
                            "so you can try the whole flow (train, watch the curves, stop, export) on any computer. "
                            "It learns the demo data in a minute; it is not a useful assistant."))
        return w

    def _build_local_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 6, 0, 0)
        row = QHBoxLayout()
        self._local_edit = QLineEdit()
        self._local_edit.setPlaceholderText("Folder that contains config.json and *.safetensors")
        self._local_edit.returnPressed.connect(lambda: self._use_local(self._local_edit.text()))
        browse = QPushButton("Browse…")
        browse.setObjectName("local_browse")
        browse.clicked.connect(self._on_browse_clicked)
        use = QPushButton("Use this folder")
        use.setProperty("primary", True)
        use.clicked.connect(lambda: self._use_local(self._local_edit.text()))
        row.addWidget(self._local_edit, 1)
        row.addWidget(browse)
        row.addWidget(use)
        lay.addLayout(row)
        self._local_banner = Banner()
        lay.addWidget(self._local_banner)
        return w

    def _build_cache_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 6, 0, 0)
        top = QHBoxLayout()
        self._cache_label = muted("", role="faint")
        rescan = QPushButton("Rescan")
        rescan.setProperty("flat", True)
        rescan.clicked.connect(self.scan_cache)
        top.addWidget(self._cache_label, 1)
        top.addWidget(rescan)
        lay.addLayout(top)
        self._cache_model = CacheTableModel(self)
        self._cache_view = QTableView()
        self._cache_view.setModel(self._cache_model)
        self._cache_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._cache_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._cache_view.verticalHeader().hide()
        self._cache_view.setShowGrid(False)
        self._cache_view.setAlternatingRowColors(True)
        self._cache_view.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2, 3):
            self._cache_view.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self._cache_view.setMinimumHeight(180)
        self._cache_view.selectionModel().currentRowChanged.connect(self._on_cache_row_changed)
        lay.addWidget(self._cache_view)
        self._cache_banner = Banner()
        lay.addWidget(self._cache_banner)
        return w

    def _build_hub_panel(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(0, 6, 0, 0)
        row = QHBoxLayout()
        self._hub_edit = QLineEdit()
        self._hub_edit.setPlaceholderText("organisation/model, e.g. Qwen/Qwen2.5-0.5B-Instruct")
        self._hub_edit.returnPressed.connect(self._on_download_clicked)
        self._download_button = QPushButton("Download")
        self._download_button.setProperty("primary", True)
        self._download_button.clicked.connect(self._on_download_clicked)
        row.addWidget(self._hub_edit, 1)
        row.addWidget(self._download_button)
        lay.addLayout(row)
        self._hub_progress_row = QWidget()  # progress and Cancel, shown only while downloading
        progress_row = QHBoxLayout(self._hub_progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self._hub_progress = QProgressBar()
        self._cancel_download_button = QPushButton("Cancel")
        self._cancel_download_button.setObjectName("cancel_download")
        self._cancel_download_button.setToolTip("Stop the download; the files fetched so far are kept and resumed next time")
        self._cancel_download_button.clicked.connect(self._on_cancel_download_clicked)
        progress_row.addWidget(self._hub_progress, 1)
        progress_row.addWidget(self._cancel_download_button)
        self._hub_progress_row.hide()
        lay.addWidget(self._hub_progress_row)
        self._hub_banner = Banner()
        lay.addWidget(self._hub_banner)
        lay.addWidget(muted("Downloads go to the Hugging Face cache, where other tools find them too. "
                            "Only the safetensors weights, configs and tokenizer files are fetched.", role="faint"))
        return w

    # ---- choosing -----------------------------------------------------------------------
    def _on_source_clicked(self, key: str) -> None:
        self._show_panel(key)
        if key == "demo":
            self._apply_model("demo", "", None)
        elif key == "cache" and self._cache_model.rowCount() == 0 and not self._scan.busy:
            self.scan_cache()
        elif key == "hub" and not self._download.busy:
            from studio.core import hub_download

            self._hub_check.start(lambda _state: hub_download.offline_reason(), self._on_offline_check_done)

    def _show_panel(self, key: str) -> None:
        for k, panel in self._panels.items():
            panel.setVisible(k == key)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a Hugging Face model folder", self._local_edit.text())
        if folder:
            self._local_edit.setText(folder)
            self._use_local(folder)

    def _use_local(self, path: str) -> bool:
        path = path.strip()
        if not path:
            self._local_banner.show_message("Choose a folder first.", "warn")
            return False
        try:
            facts = _models().inspect_model(path)
        except (_models().ModelError, OSError) as e:
            self._local_banner.show_message(str(e), "error")
            return False
        self._local_banner.show_message(f"Using {facts.name}: {facts.architecture}, {fmt_params(facts.num_params)} parameters.", "ok")
        self._apply_model("local", facts.path, facts)
        return True

    def scan_cache(self) -> None:
        self._cache_label.setText("Scanning the Hugging Face cache…")
        self._cache_banner.show_message("")
        models = _models()

        def scan(_state):
            return models.hf_cache_dir(), models.scan_hf_cache_detailed()

        self._scan.start(scan, self._on_scan_done, self._on_scan_failed)

    @property
    def scanning(self) -> bool:
        return self._scan.busy

    @property
    def downloading(self) -> bool:
        return self._download.busy

    def _on_scan_done(self, result) -> None:
        cache_dir, scan = result
        self._cache_model.set_facts(scan.models)
        n = len(scan.models)
        self._cache_label.setText(f"{n} model{'s' if n != 1 else ''} in {cache_dir}")
        if not n:
            self._cache_banner.show_message(f"No models in the Hugging Face cache ({cache_dir}). Download one from the hub "
                                            "or choose a local folder.", "info")
        elif scan.skipped:
            skipped = "; ".join(f"{name}: {why}" for name, why in scan.skipped[:3])
            self._cache_banner.show_message(f"Skipped {len(scan.skipped)} entr{'ies' if len(scan.skipped) > 1 else 'y'}: {skipped}", "warn")

    def _on_scan_failed(self, message: str) -> None:
        self._cache_label.setText("")
        self._cache_banner.show_message(f"Could not scan the cache: {message}", "error")

    def _on_cache_row_changed(self, current, _previous) -> None:
        if not current.isValid():
            return
        facts = self._cache_model.facts(current.row())
        self._apply_model("local", facts.path, facts)

    def _on_download_clicked(self) -> None:
        from studio.core import hub_download

        repo_id = self._hub_edit.text().strip()
        problem = hub_download.repo_id_problem(repo_id)
        if problem:
            self._hub_banner.show_message(problem, "warn")
            return
        if self._download.busy:
            return
        cached = hub_download.cached_snapshot(repo_id)
        if cached is not None:
            self._finish_hub(repo_id, cached, "Already in the Hugging Face cache.")
            return
        self._download_cancelled = False
        self._set_downloading(True)
        self._hub_banner.show_message(f"Connecting to the hub for {repo_id}…", "info")
        self._download.start(
            lambda state: hub_download.download(repo_id, None, state, state.cancel_event),
            on_done=lambda folder: self._finish_hub(repo_id, folder, "Downloaded into the Hugging Face cache."),
            on_failed=self._on_download_failed, on_progress=self._on_download_progress)

    def _on_offline_check_done(self, reason: str | None) -> None:
        if reason and not self._download.busy and not self._hub_banner.text():
            self._hub_banner.show_message(f"{reason} Models already in the Hugging Face cache can still be chosen by id.",
                                          "warn")

    def _set_downloading(self, on: bool) -> None:
        self._download_button.setEnabled(not on)
        self._cancel_download_button.setEnabled(on)
        self._hub_progress.setRange(0, 0)  # busy until the first progress report
        self._hub_progress_row.setVisible(on)

    def _on_cancel_download_clicked(self) -> None:
        if not self._download.busy:
            return
        self._download_cancelled = True
        self._download.stop()  # the child process ends; DownloadCancelled arrives as the failure
        self._cancel_download_button.setEnabled(False)
        self._hub_banner.show_message("Cancelling the download…", "info")

    def _on_download_progress(self, current: int, total: int, label: str) -> None:
        if total:
            self._hub_progress.setRange(0, total)
            self._hub_progress.setValue(current)
        self._hub_banner.show_message(f"Downloading {label}", "info")

    def _on_download_failed(self, message: str) -> None:
        self._set_downloading(False)
        if self._download_cancelled:
            from studio.core.hub_download import CANCELLED_MESSAGE

            self._hub_banner.show_message(CANCELLED_MESSAGE, "warn")
        else:
            self._hub_banner.show_message(message, "error")

    def _finish_hub(self, repo_id: str, folder: str, note: str) -> None:
        self._set_downloading(False)
        try:
            facts = _models().inspect_model(folder, name=repo_id, hub_id=repo_id)
        except (_models().ModelError, OSError) as e:
            self._hub_banner.show_message(f"{note} But it cannot be used: {e}", "error")
            return
        self._hub_banner.show_message(f"{note} {facts.architecture}, {fmt_params(facts.num_params)} parameters.", "ok")
        self._apply_model("hub", repo_id, facts)

    def _apply_model(self, source: str, path: str, facts: Optional[ModelFacts]) -> None:
        is_demo = source == "demo"
        if facts is None:
            facts = self._resolve(source, path)
        values: dict[str, Any] = {"model.source": source, "model.path": path}
        values.update(suggested_settings(facts, is_demo))
        self._applying = True  # this page chose it: its panels already show the choice
        try:
            self._model.update(values)
        finally:
            self._applying = False

    # ---- showing ------------------------------------------------------------------------
    def _show_source_for(self, config: RunConfig) -> None:
        source, path = config.model.source, config.model.path
        key = source if source in ("demo", "hub") else "local"
        parts = Path(path).parts
        if source == "local" and "snapshots" in parts and any(p.startswith("models--") for p in parts):
            key = "cache"
        self._source_buttons[key].setChecked(True)
        self._show_panel(key)
        if key == "local":
            self._local_edit.setText(path)
        elif key == "hub":
            self._hub_edit.setText(path)
            if not self._download.busy:
                missing = _models().find_in_hf_cache(path) is None
                self._hub_banner.show_message(f"{path} is not downloaded yet: Download fetches it into the Hugging Face "
                                              "cache (Train cannot start without it)." if missing else "",
                                              "warn")

    def _on_config_changed(self, config: RunConfig) -> None:
        if (config.model.source, config.model.path) != self._facts_key and not self._applying:
            # another page (Planner, File > Open config) chose the model: highlight its source here too
            self._show_source_for(config)
        self._refresh_facts(config)

    def _resolve(self, source: str, path: str) -> Any:
        try:
            return _models().resolve_facts(source, path)
        except Exception:  # shown by _refresh_facts; here only defaults are at stake
            return None

    def _refresh_facts(self, config: RunConfig) -> None:
        key = (config.model.source, config.model.path)
        if key == self._facts_key:
            return
        self._facts_key = key
        error = ""
        try:
            facts = _models().resolve_facts(*key)
        except Exception as e:  # ModelError and friends: show the reason instead of facts
            facts, error = None, str(e)
        self._facts = facts
        self._show_facts(facts, error)
        self.sig_model_facts_changed.emit(facts)

    @property
    def facts(self) -> Optional[ModelFacts]:
        return self._facts

    def _show_facts(self, facts: Optional[ModelFacts], error: str) -> None:
        while self._facts_grid.count():
            item = self._facts_grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        if facts is None:
            self._facts_card.set_subtitle("")
            self._facts_banner.show_message(error or "No model chosen.", "error" if error else "info")
            return
        self._facts_banner.show_message(" · ".join(getattr(facts, "notes", ()) or ()), "info")
        self._facts_card.set_subtitle(f"{facts.name} — {facts.path or facts.hub_id or ''}")
        items = [
            ("Architecture", facts.architecture),
            ("Parameters", fmt_params(facts.num_params) + ("" if facts.params_exact else " (from config)")),
            ("Layers", str(facts.num_layers)),
            ("Hidden size", str(facts.hidden_size)),
            ("Attention heads", f"{facts.num_heads} (KV {facts.num_kv_heads})"),
            ("Context length", f"{facts.max_position_embeddings:,}"),
            ("Weights dtype", ", ".join(facts.weight_dtypes) or facts.torch_dtype or "—"),
            ("Size on disk", fmt_bytes(facts.size_on_disk) if facts.size_on_disk else "not downloaded"),
            ("Chat template", "yes" if facts.has_chat_template else "no: ChatML, or a custom one (Data page)"),
            ("Vocabulary", f"{facts.vocab_size:,}"),
            ("Adapter targets", ", ".join(facts.linear_modules) or "—"),
        ]
        if facts.num_experts:
            items.append(("Experts", f"{facts.num_experts} ({facts.experts_per_token} per token)"))
        cols = 3
        for i, (k, v) in enumerate(items):
            r, c = divmod(i, cols)
            cell = QVBoxLayout()
            cell.setSpacing(2)
            key = QLabel(k.upper())
            key.setProperty("role", "metric-label")
            val = QLabel(v)
            val.setWordWrap(True)
            val.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box = QWidget()
            bl = QVBoxLayout(box)
            bl.setContentsMargins(0, 0, 0, 0)
            bl.setSpacing(3)
            bl.addWidget(key)
            bl.addWidget(val)
            self._facts_grid.addWidget(box, r, c, Qt.AlignmentFlag.AlignTop)
        for c in range(cols):
            self._facts_grid.setColumnStretch(c, 1)
