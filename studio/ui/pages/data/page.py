"""DataPage: bring a dataset in, see exactly what the model will be trained on, check it at scale.

Source (demo, file or folder, hub id) -> preview of the first rows, raw and rendered with the
loss mask visible -> format detection with evidence, the chat template (the model's own, a named
one, or a custom Jinja one in an editor) and hand mapping -> statistics over the whole
dataset (background, progress, cancel) -> split, duplicates, packing -> problems with locations.
Each card is its own widget in this folder and writes its settings into the ConfigModel; this page
runs the jobs of jobs.py, one JobSlot each, so a 1 GB file never blocks the window and a job made
stale by a newer setting is cancelled and its result ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QVBoxLayout, QWidget

from studio.core.config import DataSpec, RunConfig
from studio.core.data import Preview, RenderedRow, TokenizerAdapter
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data import jobs
from studio.ui.pages.data.format_card import FormatCard
from studio.ui.pages.data.preview_card import PreviewCard
from studio.ui.pages.data.problems_card import ProblemsCard
from studio.ui.pages.data.source_card import SourceCard
from studio.ui.pages.data.split_card import SplitCard
from studio.ui.pages.data.stats_card import StatsCard
from studio.ui.tasks import JobSlot, TaskState
from studio.ui.widgets.card import page_layout, scroll_page

if TYPE_CHECKING:
    from studio.core.data.stats import DataStats

DEBOUNCE_MS = 250


class DataPage(QWidget):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._preview: Optional[Preview] = None
        self._preview_key: Optional[tuple] = None  # the data the shown preview was read from
        self._tokenizer: Optional[TokenizerAdapter] = None
        self._tokenizer_error = ""
        self._stats: Optional[DataStats] = None
        self._trial: Optional[tuple[tuple, DataSpec]] = None  # (data key, the data it replaced) until it reads
        self._rejected = ""  # why the last chosen file was not kept, shown once the previous data is back
        self._jobs = {kind: JobSlot() for kind in ("preview", "tokenizer", "render", "stats")}

        content = QWidget()
        lay = page_layout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))
        self.source = SourceCard(config_model)
        self.format_card = FormatCard(config_model)
        self.preview_card = PreviewCard(config_model)
        self.stats_card = StatsCard()
        self.split_card = SplitCard(config_model)
        self.problems_card = ProblemsCard()
        for card in (self.source, self.format_card, self.preview_card, self.stats_card, self.split_card,
                     self.problems_card):
            lay.addWidget(card)
        lay.addStretch(1)
        self.source.sig_data_chosen.connect(self._on_source_data_chosen)
        self.stats_card.sig_cancel_requested.connect(self._jobs["stats"].stop)
        self.stats_card.sig_recompute_requested.connect(lambda: self._start_stats(force=True))

        self.setAcceptDrops(True)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._refresh)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self.source.show_config(config_model.config)
        self._refresh()

    # ---- for tests and the window -------------------------------------------------------------
    @property
    def preview(self) -> Optional[Preview]:
        return self._preview

    @property
    def stats(self) -> Optional[DataStats]:
        return self._stats

    @property
    def rendered(self) -> list[RenderedRow]:
        return self.preview_card.rendered

    @property
    def tokenizer_error(self) -> str:
        return self._tokenizer_error

    def sample_html(self) -> str:
        return self.preview_card.sample_html()

    def problem_rows(self) -> list[tuple[str, str]]:
        return self.problems_card.rows()

    def mapping_combo(self, column: str) -> Optional[QComboBox]:
        return self.format_card.mapping_combo(column)

    def use_path(self, path: str) -> None:
        """Select a dataset file or folder (drag-and-drop, tests)."""
        self.source.use_path(path)

    def stats_running(self) -> bool:
        return self._jobs["stats"].busy

    # ---- the user and the config ----------------------------------------------------------------
    def _on_config_changed(self, config: RunConfig) -> None:
        self.source.show_config(config)
        self._timer.start()

    def _on_source_data_chosen(self, previous: DataSpec) -> None:
        # On trial until its first rows are read: a file that cannot be read at all (an image saved
        # as .jsonl) is not kept as the run's data; the previous choice comes back (issue #13).
        self._trial = (jobs.data_key(self._model.config), previous)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            self.use_path(files[0])
            event.acceptProposedAction()

    # ---- background work: each job runs when its inputs changed -------------------------------
    def _refresh(self) -> None:
        config = self._model.config
        data_key, model_key = jobs.data_key(config), jobs.model_key(config)
        if self._jobs["preview"].key != data_key:
            self._jobs["preview"].start(lambda _state: jobs.preview_job(config), self._on_preview_done,
                                        self._on_preview_failed, key=data_key)
            self.source.banner.show_message("Reading the first rows…", "info")
        if self._jobs["tokenizer"].key != model_key:
            self._tokenizer = None
            self._tokenizer_error = ""
            self.format_card.set_tokenizer(None)
            self._jobs["tokenizer"].start(lambda _state: jobs.tokenizer_job(config), self._on_tokenizer_done,
                                          self._on_tokenizer_failed, key=model_key)
        self._start_render()
        self._start_stats()

    def _start_render(self) -> None:
        config = self._model.config
        if self._preview is None or self._preview_key != jobs.data_key(config):
            return
        key = jobs.render_key(config) + (self._tokenizer is not None,)
        if self._jobs["render"].key != key:
            preview, tok = self._preview, self._tokenizer
            self._jobs["render"].start(lambda _state: jobs.render_job(preview, config, tok),
                                       self.preview_card.set_rendered, self.preview_card.show_failure, key=key)

    def _start_stats(self, force: bool = False) -> None:
        config = self._model.config
        if self._tokenizer is None or self._preview is None:
            return
        key = jobs.stats_key(config)
        if self._jobs["stats"].key == key and not force:
            return
        tok = self._tokenizer

        def stats(state: TaskState) -> jobs.StatsResult:
            return jobs.stats_job(config, tok, jobs.progress_for(state, state.cancel_event))  # a cancel stops it

        self.stats_card.show_started()
        self._jobs["stats"].start(stats, self._on_stats_done, self._on_stats_failed, self.stats_card.show_progress,
                                  key=key)

    # ---- results --------------------------------------------------------------------------------
    def _on_preview_done(self, preview: Preview) -> None:
        self._trial = None
        self._preview = preview
        self._preview_key = jobs.data_key(self._model.config)
        self.preview_card.set_preview(preview)
        more = "" if preview.complete else " (the first rows; statistics read everything)"
        self.source.banner.show_message(f"{preview.source}: showing {len(preview.rows):,} rows{more}.", "ok")
        if self._rejected:
            self.source.banner.show_message(self._rejected, "error")
            self._rejected = ""
        self._show_detection()
        self.format_card.show_mapping(preview)
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
        self._preview_key = None
        self.preview_card.set_preview(None)
        self.source.banner.show_message(message, "error")
        self.format_card.detect_banner.show_message("")
        self.format_card.clear_mapping()
        self.stats_card.view.clear()
        self._stats = None
        self._show_problems()

    def _on_tokenizer_done(self, tokenizer: TokenizerAdapter) -> None:
        self.stats_card.clear_tokenizer_warning()  # the previous model's; the statistics below are current
        self._tokenizer = tokenizer
        self._tokenizer_error = ""
        self.preview_card.tokenizer_error = ""
        self.format_card.set_tokenizer(tokenizer)
        self._show_detection()
        self._start_render()
        self._start_stats()

    def _on_tokenizer_failed(self, message: str) -> None:
        self._tokenizer_error = message
        self.preview_card.tokenizer_error = message
        self._show_detection()
        self.preview_card.show_sample()
        self.stats_card.show_tokenizer_failure(message)

    def _on_stats_done(self, result: jobs.StatsResult) -> None:
        if result.cancelled:
            self.stats_card.show_cancelled()
            self._jobs["stats"].key = None  # not computed: the next change (or Recompute) starts it again
            return
        s = self._stats = result.stats
        self.stats_card.show_stats(s, self._model.config.training)
        self.format_card.detect_banner.show_message(f"{s.detection.title}: {s.detection.evidence}",
                                                    "ok" if s.usable == s.rows else "warn")
        self.split_card.show_stats(s)
        self._show_problems()

    def _on_stats_failed(self, message: str) -> None:
        self._stats = None
        self.stats_card.show_failure(message)

    def _show_detection(self) -> None:
        template = jobs.describe_template(self._model.config, self._tokenizer, bool(self._tokenizer_error))
        self.format_card.show_detection(self._preview, template)

    def _show_problems(self) -> None:
        if self._stats is not None:
            self.problems_card.show_problems(self._stats.problems, self._stats.problem_count)
        elif self._preview is not None:
            self.problems_card.show_problems(self._preview.problems, len(self._preview.problems))
        else:
            self.problems_card.show_problems([], 0)
