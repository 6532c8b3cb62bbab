"""ChatPage: a run's tuned model and its base answer the same question side by side, streamed.

The model lives in a chat worker process (``--worker chat``, studio/worker/chat.py), so the GUI never
imports torch and a crash or an out-of-memory there cannot take the window down. The worker loads
the base once with the run's trained weights and keeps it loaded between questions; the base side is
the same model with the training switched off, and other weights over the same base switch in
milliseconds (the tuned column's picker). This page only sends commands (studio.core.chat) through
WorkerProcess.send and files the events into a Transcript (studio.core.chat_transcript); a timer
repaints the bubbles that changed, so a fast token stream never repaints per token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QScrollArea, QWidget

from studio.core.chat_sources import ChatSource, adapter_candidates, run_weights
from studio.core.chat_transcript import Transcript
from studio.core.runs import Run
from studio.ui.config_model import ConfigModel
from studio.ui.pages.chat import jobs
from studio.ui.pages.chat.columns import FOLDER, SET, AdapterPicker, SideHeader, folder_adapter_name
from studio.ui.pages.chat.composer import Composer
from studio.ui.pages.chat.conversation import ConversationView
from studio.ui.pages.chat.describe import TEMPLATE_TITLES, capitalize, describe_ready
from studio.ui.pages.chat.settings_panel import SettingsPanel
from studio.ui.pages.chat.source_card import SourceCard
from studio.ui.pages.spec import Work
from studio.ui.process import WorkerProcess, split_log_tail
from studio.ui.tasks import JobSlot
from studio.ui.widgets.card import Card, page_layout

REDRAW_MS = 60  # ~16 Hz: smooth enough for streaming text, never a repaint per token
QUIT_TIMEOUT_S = 10.0  # a worker that has not quit by then is killed
LOG_HINT_CHARS = 110
ANSWER_ORDER = ("tuned", "base")  # the answer you trained for comes first; the base follows with the same seed
SETTINGS_WIDTH = 304
EMPTY_IDLE = ("Nothing loaded yet", "Pick a run and press Load. Its base model loads once, with the trained weights "
              "on it; the base side is the same model with the training switched off, so both sides answer with the "
              "same settings and seed and differ only by what the run learned.")
EMPTY_READY = ("Ask both sides the same question", "Each answer streams into its column, with how long the first "
               "token took and how fast the rest came.")


class ChatPage(QWidget):
    sig_status_changed = Signal(str)  # for the status bar

    def __init__(self, config_model: ConfigModel, store_root: Optional[Path] = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._store_root = store_root
        self.transcript = Transcript()
        self.worker: Optional[WorkerProcess] = None
        self.source: Optional[ChatSource] = None  # what the worker has (or is loading)
        self.ready: Optional[dict[str, Any]] = None
        self.adapters: list[str] = []
        self.active_adapter: Optional[str] = None
        self._located: dict[Path, str] = {}  # run folder -> where its moved base model is now (this session)
        self._last_log = ""
        self._dirty = False
        self._tokenizer_slot = JobSlot()
        self._models_slot = JobSlot()
        self._questions_slot = JobSlot()
        self._questions: tuple[str, ...] = ()  # from the loaded run's data, for the empty conversation

        lay = page_layout(self)
        self.source_card = SourceCard()
        self.source_card.sig_load_requested.connect(self.load)
        self.source_card.sig_locate_requested.connect(self._on_locate_requested)
        self.source_card.sig_retry_requested.connect(self._on_retry_requested)
        self.source_card.sig_settings_toggled.connect(self._on_settings_toggled)
        lay.addWidget(self.source_card)

        body = QHBoxLayout()
        body.setSpacing(16)
        chat = Card()
        chat.layout().setContentsMargins(14, 14, 14, 14)
        heads = QHBoxLayout()
        heads.setSpacing(12)
        self.heads = {"base": SideHeader("base", "Base"), "tuned": SideHeader("tuned", "Tuned")}
        self.adapter_picker = AdapterPicker()
        self.adapter_picker.sig_adapter_requested.connect(self._on_adapter_requested)
        self.heads["tuned"].extra.addWidget(self.adapter_picker)
        self.heads["tuned"].extra.addStretch(1)
        for head in self.heads.values():
            head.sig_answering_toggled.connect(self._on_answering_toggled)
            heads.addWidget(head, 1)
        chat.body.addLayout(heads)
        self.conversation = ConversationView(self.transcript)
        self.conversation.empty.sig_suggestion_clicked.connect(self.send)
        chat.body.addWidget(self.conversation, 1)
        self.composer = Composer()
        self.composer.sig_send_requested.connect(self.send)
        self.composer.sig_stop_requested.connect(self.stop_answers)
        self.composer.sig_new_chat_requested.connect(self.new_chat)
        chat.body.addWidget(self.composer)
        body.addWidget(chat, 1)
        self.settings = SettingsPanel()
        self.settings.set_prompt_source(self._next_prompt)
        self.settings.sig_settings_changed.connect(self._update_composer)
        self.composer.edit.textChanged.connect(self._on_draft_changed)
        self.settings_area = QScrollArea()
        self.settings_area.setWidgetResizable(True)
        self.settings_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_area.setWidget(self.settings)
        self.settings_area.setFixedWidth(SETTINGS_WIDTH)
        body.addWidget(self.settings_area)
        lay.addLayout(body, 1)

        self._prompt_timer = QTimer(self, singleShot=True, interval=250)
        self._prompt_timer.timeout.connect(self.settings.refresh_prompt)
        self._redraw_timer = QTimer(self)
        self._redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self._redraw_timer.start(REDRAW_MS)
        self._show_not_loaded()
        self.refresh()
        self._scan_models()

    # ---- the window's hooks (studio.ui.pages.spec) ------------------------------------------
    def refresh(self) -> None:
        """Runs were created or finished: list the runs that have trained weights."""
        from studio.core.run_roots import all_runs

        self.source_card.set_runs(all_runs(self._store_root))

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.refresh()  # runs the CLI wrote meanwhile, checkpoints saved since

    def run_action(self, action: str, run: Run, source: Optional[str] = None, label: Optional[str] = None,
                   **_options: Any) -> str:
        """"chat" with a run: select it (its weights at ``source``/called ``label``, e.g. a checkpoint an evaluation
        picked; else its final weights) and load it; why not, or ""."""
        weights = run_weights(run)
        if not weights:
            return "it has no trained weights yet (no final adapter, no checkpoint): train it first."
        pick = next((w for w in weights if w.label == label or (source and Path(source) == w.path)), None)
        self.source_card.select_run(run, pick.label if pick is not None else None)
        self.load(self.source_card.current_source())
        return ""

    def busy_work(self) -> Work:
        return Work.SESSION if self.worker is not None and self.worker.is_running() else Work.NONE

    def stop_work(self) -> None:
        self._end_worker()

    def kill_work(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    # ---- loading ----------------------------------------------------------------------------
    def load(self, source: Optional[ChatSource]) -> bool:
        """Start a chat worker for ``source`` (the one before quits); False with the reason shown if not."""
        if source is None:
            return False
        if source.run is not None and not source.base_path and source.run.path in self._located:
            source = source.located(self._located[source.run.path])
        self._end_worker()
        self.source = source
        self.ready = None
        self.adapters, self.active_adapter = [], None
        self.source_card.clear_problem()
        self.source_card.set_loaded(source)
        where, problem = source.base_problem()
        if problem:
            self._show_not_loaded()
            self.source_card.set_loaded(None)
            self.source_card.show_problem(problem, "error", locate=source.run is not None)
            self.sig_status_changed.emit(f"Chat: the base model of “{source.title()}” is missing")
            return False
        worker = WorkerProcess(source.run, "chat", source.worker_args(), stop_timeout_s=QUIT_TIMEOUT_S,
                               parent=self, interactive=True)
        worker.sig_event_received.connect(lambda e, w=worker: self._on_worker_event(w, e))
        worker.sig_log_received.connect(lambda line, w=worker: self._on_worker_log(w, line))
        worker.sig_finished.connect(lambda state, message, w=worker: self._on_worker_finished(w, state, message))
        try:
            worker.start()
        except OSError as e:
            self._show_not_loaded()
            self.source_card.show_problem(f"The chat worker could not start: {e}", "error", retry=True)
            return False
        self.worker = worker
        self._last_log = ""
        self.source_card.set_status("LOADING", "run", "Starting the chat worker…")
        self.conversation.set_empty_text(f"Loading {source.title()}…", "The window stays usable meanwhile; the "
                                         "status line above says what the worker is doing.")
        for side, head in self.heads.items():
            head.set_status(True, "Loading…")
        self.adapter_picker.hide()
        self._update_composer()
        self._load_tokenizer(source)
        self._load_questions(source)
        self.sig_status_changed.emit(f"Chat: loading “{source.title()}”")
        return True

    def _end_worker(self) -> None:
        """Quit the current worker (it stops an answer first); its end is no longer this page's business."""
        worker, self.worker = self.worker, None
        if worker is not None and worker.is_running():
            worker.stop()
        if self.transcript.busy:
            self._file(self.transcript.fail_pending("Stopped: the model was unloaded."))

    def _show_not_loaded(self) -> None:
        self.source_card.set_status("NOT LOADED", "", "Nothing is loaded: pick what to chat with and press Load.")
        self.conversation.set_empty_text(*EMPTY_IDLE)
        for side, head in self.heads.items():
            head.set_status(False, "Not loaded")
        self.adapter_picker.hide()
        self._update_composer()

    # ---- worker events ------------------------------------------------------------------------
    def _on_worker_event(self, worker: WorkerProcess, event: dict) -> None:
        if worker is not self.worker:
            return  # a worker being replaced: its last words do not concern the new one
        kind = event.get("type")
        if kind in ("token", "reply") or (kind == "error" and event.get("id")):
            self._file(self.transcript.apply(event))
            if kind == "reply" and not self.transcript.busy:
                self._update_composer()
            return
        if kind == "phase":
            self._set_loading_text(f"Loading {event.get('detail') or 'the model'}…")
        elif kind == "ready":
            self._on_ready(event)
        elif kind == "switched":
            self._on_switched(event)
        elif kind == "error":
            self._on_worker_error(event)

    def _on_worker_log(self, worker: WorkerProcess, line: str) -> None:
        if worker is self.worker and line.strip():
            self._last_log = line.strip()
            if self.ready is None:
                self._set_loading_text(self.source_card.status().split(" · ")[0])

    def _set_loading_text(self, text: str) -> None:
        hint = self._last_log
        if len(hint) > LOG_HINT_CHARS:
            hint = hint[:LOG_HINT_CHARS].rsplit(" ", 1)[0] + "…"
        self.source_card.set_status("LOADING", "run", f"{text} · {hint}" if hint else text)

    def _on_ready(self, event: dict) -> None:
        self.ready = event
        self.adapters = list(event.get("adapters") or [])
        self.active_adapter = event.get("adapter")
        self.source_card.set_status("READY", "ok", describe_ready(event, self.source))
        notes = event.get("notes") or []
        if notes:
            self.source_card.show_problem(" ".join(notes), "info")
        sides = event.get("sides") or {}
        for side, head in self.heads.items():
            status = sides.get(side) or {"available": False, "note": "not offered by this worker"}
            head.set_status(bool(status.get("available")), capitalize(str(status.get("note", ""))))
        self._fill_adapter_picker()
        template = TEMPLATE_TITLES.get(str(event.get("template")), str(event.get("template") or ""))
        self.settings.set_trained_template(template, self.settings.trained_jinja)
        self.conversation.set_empty_text(*EMPTY_READY, self._questions)
        self._update_composer()
        self.sig_status_changed.emit(f"Chat: “{self.source.title()}” loaded")

    def _on_switched(self, event: dict) -> None:
        self.adapters = list(event.get("adapters") or self.adapters)
        self.active_adapter = event.get("adapter")
        load = f", read from disk in {event['load_ms']:,.0f} ms" if event.get("load_ms") is not None else ""
        note = (f"{self.active_adapter}: switched in {float(event.get('ms') or 0):,.1f} ms{load}; the base stayed "
                "loaded")
        self.heads["tuned"].set_status(True, note)
        self._fill_adapter_picker()
        self._update_composer()

    def _on_worker_error(self, event: dict) -> None:
        message = str(event.get("message") or "The chat worker reported an error.")
        if event.get("kind") == "model" and self.ready is None:
            self.source_card.show_problem(message, "error", locate=self.source is not None and self.source.is_run)
        elif self.ready is None:
            self.source_card.show_problem(message, "error", retry=True)
        else:  # a command it could not take (a failed adapter load): the chat goes on
            self.source_card.show_problem(message, "warn")
            if self.heads["tuned"].note.text().startswith("Loading"):
                self.heads["tuned"].set_status(self.active_adapter is not None, "")

    def _on_worker_finished(self, worker: WorkerProcess, state: str, message: str) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        summary, _tail = split_log_tail(message)
        ended = f"The chat worker ended: {summary}" if summary else "The chat worker ended."
        self._file(self.transcript.fail_pending(ended))
        if not self.source_card.problem():
            self.source_card.show_problem(ended, "error", retry=True)
        self.ready = None
        self.source_card.set_status("ENDED", "error", "Not loaded: the chat worker ended. Retry loads it again; the "
                                                      "conversation stays.")
        for head in self.heads.values():
            head.set_status(False, "Not loaded")
        self.adapter_picker.hide()
        self._update_composer()
        self.sig_status_changed.emit("Chat: the worker ended")

    # ---- asking -------------------------------------------------------------------------------
    def answering_sides(self) -> list[str]:
        return [s for s in ANSWER_ORDER if self.heads[s].answering()]

    def send(self, text: str) -> bool:
        """Ask ``text`` of every answering side; False (the text back in the box) when it cannot go now."""
        problem = self._blocked_reason()
        if problem or self.transcript.busy:
            self.composer.edit.setPlainText(text)
            return False
        exchange, fields = self.transcript.ask(text, self.answering_sides(), self.settings.keep_history())
        system, template = self.settings.system(), self.settings.template()
        if system:
            fields["system"] = system
        if template != "auto":
            fields["template"] = template
        if not self.worker.send("generate", sampling=self.settings.sampling(), **fields):
            self._file(self.transcript.fail_pending("The chat worker is not taking questions any more."))
        self._dirty = True
        self._update_composer()
        return True

    def stop_answers(self) -> None:
        pending = self.transcript.pending
        if pending is not None and self.worker is not None:
            self.worker.send("stop", id=pending.id)

    def new_chat(self) -> None:
        self.stop_answers()
        if self.transcript.busy:  # its answers are stopping; they no longer belong anywhere
            self.transcript.fail_pending("Stopped for a new chat.")
        self.transcript.clear()
        self.conversation.refresh()
        self._update_composer()
        self.settings.refresh_prompt()
        self.composer.edit.setFocus()

    def _blocked_reason(self) -> str:
        if self.worker is None or self.ready is None:
            return "Loading the model…" if self.worker is not None else "Load a model first (above)."
        if not self.answering_sides():
            return "Tick Answers on at least one side."
        return self.settings.problem()

    def _update_composer(self) -> None:
        self.composer.set_busy(self.transcript.busy)
        self.composer.set_blocked(self._blocked_reason())

    # ---- adapters (dynamic mode) --------------------------------------------------------------
    def _fill_adapter_picker(self) -> None:
        from studio.core.run_roots import all_runs

        candidates = adapter_candidates(self.source, all_runs(self._store_root), self.adapters) \
            if self.source is not None and self.source.is_run else []
        self.adapter_picker.set_choices(self.adapters, self.active_adapter, candidates, can_load=self.ready is not None)
        self.adapter_picker.setVisible(self.ready is not None)

    def _on_adapter_requested(self, action: str, name: str, path: str) -> None:
        if self.worker is None or self.ready is None:
            return
        if action == FOLDER:
            path = QFileDialog.getExistingDirectory(self, "Choose trained weights (a folder with .safetensors)",
                                                    str(Path.home()))
            if not path:
                return
            name = folder_adapter_name(path, self.adapters)
        if action == SET:
            self.worker.send("set_adapter", name=name)
        else:
            self.worker.send("load_adapter", name=name, path=path)
        self.heads["tuned"].set_status(True, f"Loading {name}…" if action != SET else f"Switching to {name}…")

    def _on_answering_toggled(self, _side: str, _on: bool) -> None:
        self._update_composer()

    # ---- fixing problems ------------------------------------------------------------------------
    def _on_locate_requested(self) -> None:
        source = self.source or self.source_card.current_source()
        if source is None or source.run is None:
            return
        folder = self.ask_base_folder(source)
        if not folder:
            return
        located = source.located(folder)
        _where, problem = located.base_problem()
        if problem:
            self.source_card.show_problem(problem, "error", locate=True)
            return
        self._located[source.run.path] = located.base_path
        self.load(located)

    def ask_base_folder(self, source: ChatSource) -> str:
        """Ask where the base model is now; tests replace this method."""
        return QFileDialog.getExistingDirectory(self, f"Where is the base model of “{source.title()}” now? "
                                                      "(the folder with its config.json)", str(Path.home()))

    def _on_retry_requested(self) -> None:
        self.load(self.source or self.source_card.current_source())

    def _on_settings_toggled(self, on: bool) -> None:
        self.settings_area.setVisible(on)

    # ---- the template's text and the tokenizer (no torch) -----------------------------------------
    def _load_tokenizer(self, source: ChatSource) -> None:
        spec, setting = jobs.model_spec(source), jobs.template_setting(source)
        self.settings.set_trained_template_setting(setting)
        self._tokenizer_slot.start(lambda _state: jobs.read_tokenizer(spec),
                                   lambda tok: self._on_tokenizer_loaded(tok, setting),
                                   on_failed=lambda _message: self.settings.set_tokenizer(None))

    def _on_tokenizer_loaded(self, tokenizer: Any, setting: str) -> None:
        from studio.core.chat_formats import run_chat_template

        jinja, _where = run_chat_template(setting, tokenizer.chat_template)
        title = self.settings.trained_title
        self.settings.set_trained_template(title, jinja)
        self.settings.set_tokenizer(tokenizer)

    def _load_questions(self, source: ChatSource) -> None:
        self._questions = ()
        if source.run is not None:
            cfg = source.config()
            self._questions_slot.start(lambda _state: jobs.questions(cfg), self._on_questions_found,
                                       on_failed=lambda _message: None)

    def _on_questions_found(self, questions: tuple[str, ...]) -> None:
        self._questions = questions
        if self.ready is not None:
            self.conversation.set_empty_text(*EMPTY_READY, questions)

    def _next_prompt(self) -> tuple[list[dict[str, str]], str]:
        """The tuned side's conversation for the draft in the box (the prompt view renders it)."""
        side = next(iter(self.answering_sides()), "tuned")
        draft = self.composer.edit.toPlainText().strip() or "Hello!"
        train_on = self.source.config().data.train_on if self.source is not None and self.source.is_run else "completion"
        history = self.transcript.history(side) if self.settings.keep_history() else []
        return history + [{"role": "user", "content": draft}], train_on

    def _on_draft_changed(self) -> None:
        if self.settings.prompt_view.isVisible():
            self._prompt_timer.start()  # the prompt view follows the draft, a moment after typing stops

    def _scan_models(self) -> None:
        """The plain models: the demo at once, the Hugging Face cache's models when the scan is done."""
        self.source_card.set_models(jobs.demo_models())
        self._models_slot.start(lambda _state: jobs.demo_models() + jobs.cached_models(), self.source_card.set_models,
                                on_failed=lambda _message: None)

    # ---- repainting ---------------------------------------------------------------------------
    def _file(self, changed: list) -> None:
        if changed:
            self._dirty = True

    def _on_redraw_timer_timeout(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.conversation.refresh()
        if not self.transcript.busy:
            self._update_composer()
            self.settings.refresh_prompt()

    def flush(self) -> None:
        """Repaint now what the timer would repaint next (tests and screenshots)."""
        self._dirty = True
        self._on_redraw_timer_timeout()
