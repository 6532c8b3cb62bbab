"""``--worker chat RUN_DIR|--model PATH``: keep a model loaded and answer chat commands from stdin.

The process loads the base once with the run's trained weights (studio.worker.inference), emits
``ready`` (what was loaded, in how long, which sides can answer and why not, the chat template),
then reads one JSON command per line (studio.core.chat.COMMANDS) until ``quit`` or the end of
stdin (both taken in turn, after the commands before them; a closed stdout stops a generation at
once, as nobody reads it). A reader thread takes the lines as they come, so ``stop`` reaches a running generation at
once and a bad line is answered by an ``error`` event straight away; everything else runs in
order on the main thread. Each side of a ``generate`` streams ``token`` events and ends with one
``reply``, also when it was stopped or failed, so the GUI always knows when a side is finished.
A failure while answering (out of memory, a template that rejects the conversation) is an
``error`` event with the request's id: the worker stays loaded and takes the next command.

Events go to stdout only (a token stream is no record); the log goes to ``RUN_DIR/chat/chat.log``
(for a plain model, ``STUDIO_HOME/chat/chat.log``). The training record is never written.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Optional

from studio import __version__
from studio.core.chat import CommandError, conversation_for, parse_command, with_system
from studio.worker.errors import WorkerError, classify
from studio.worker.reporter import Reporter

CHAT_DIR = "chat"
OOM_ADVICE = ("Out of memory while answering. Lower Max new tokens, shorten the conversation (or start a new "
              "one), or load the model 4-bit (a QLoRA run); the model stays loaded and the chat goes on.")


def main(run_dir: Optional[str] = None, checkpoint: Optional[int] = None, source: Optional[str] = None,
         model: Optional[str] = None, base_path: Optional[str] = None, template: str = "auto",
         commands: Optional[Iterable[str]] = None) -> int:
    from studio.core.paths import studio_home

    folder = (Path(run_dir) if run_dir else studio_home()) / CHAT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with Reporter(folder, record=False, log_path=folder / "chat.log") as rep:
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        start = time.perf_counter()
        try:
            session = ChatSession.load(rep, run_dir=run_dir, checkpoint=checkpoint, source=source, model=model,
                                       base_path=base_path, template=template)
        except BaseException as e:  # noqa: BLE001 - every failure to load ends as an event
            kind, message = classify(e)
            rep.log(traceback.format_exc().rstrip())
            rep.emit("error", message=message, kind=kind, path=getattr(e, "path", None),
                     traceback=traceback.format_exc() if kind == "internal" else None)
            rep.emit("done", status="failed", message=message)
            return 1
        session.announce(round(time.perf_counter() - start, 3))
        session.serve(sys.stdin if commands is None else commands)
        rep.emit("done", status="completed", message="chat ended")
        return 0


class ChatSession:
    """A loaded model answering commands; ``handle`` runs one, ``serve`` reads them until quit."""

    def __init__(self, loaded: Any, rep: Any, template: str = "auto", train_on: str = "completion",
                 text_mode: bool = False, label: str = "", checkpoint: Optional[int] = None):
        self.loaded = loaded
        self.rep = rep
        self.template = template
        self.train_on = train_on
        self.text_mode = text_mode  # a continued-pre-training run: prompts are continued as plain text
        self.label = label
        self.checkpoint = checkpoint
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: Optional[str] = None
        self._cancelled: set[str] = set()
        self._queue: "queue.Queue[Optional[dict]]" = queue.Queue()

    @classmethod
    def load(cls, rep: Any, run_dir: Optional[str] = None, checkpoint: Optional[int] = None,
             source: Optional[str] = None, model: Optional[str] = None, base_path: Optional[str] = None,
             template: str = "auto") -> "ChatSession":
        from studio.core.data.render import check_template
        from studio.worker.inference import load_for_inference, resolve_target

        target = resolve_target(run_dir, checkpoint, source, model, base_path)
        if template == "auto":  # the run's own: the template it trained with (a plain model's config says auto)
            template = target.cfg.data.effective_template
        problem = check_template(template)
        if problem:
            raise WorkerError(f"Chat template: {problem}", kind="config")
        rep.emit("phase", phase="loading_model", detail=target.cfg.model.path or "demo model")
        loaded = load_for_inference(target, log=rep.log)
        return cls(loaded, rep, template, target.cfg.data.train_on, _trained_on_text(target, rep.log),
                   target.label, target.checkpoint)

    def announce(self, load_s: float) -> None:
        from studio.core.data.render import is_jinja, template_tokenizer

        loaded = self.loaded
        name, _ = template_tokenizer(self.template, loaded.tokenizer)
        name = "custom" if is_jinja(self.template) else name  # the run's custom template (or one given to chat)
        self.rep.emit("ready", model=loaded.location, sides=loaded.side_status(), device=loaded.device,
                      load_s=load_s, precision=loaded.precision, quantized=loaded.quantized, mode=loaded.mode,
                      method=loaded.runtime.cfg.method.name if loaded.runtime is not None else None,
                      adapter=loaded.active, adapters=list(loaded.adapters), checkpoint=self.checkpoint,
                      source=str(loaded.adapters[loaded.active]) if loaded.active else None,
                      template="text" if self.text_mode else name, notes=loaded.notes)

    # ---- the command loop -------------------------------------------------------------------
    def serve(self, lines: Iterable[str]) -> None:
        reader = threading.Thread(target=self._read, args=(lines,), daemon=True, name="chat-commands")
        reader.start()
        while True:
            command = self._queue.get()
            if command is None or command["cmd"] == "quit":
                return
            self.handle(command)

    def _read(self, lines: Iterable[str]) -> None:
        try:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    command = parse_command(line)
                except CommandError as e:
                    self.rep.emit("error", message=str(e), kind="command")
                    continue
                if command["cmd"] == "stop":
                    self.stop(command.get("id"))
                self._queue.put(command)
        finally:
            self._queue.put(None)  # end of stdin: like quit, after what is queued

    def stop(self, request_id: Optional[str]) -> None:
        with self._lock:
            if request_id is not None:
                self._cancelled.add(request_id)
            if self._running is not None and request_id in (None, self._running):
                self._stop.set()

    def handle(self, command: dict[str, Any]) -> None:
        name = command["cmd"]
        try:
            if name == "generate":
                self.generate(command)
            elif name == "set_adapter":
                ms = self.loaded.set_adapter(command["name"])
                self.rep.emit("switched", adapter=command["name"], ms=round(ms, 3), adapters=list(self.loaded.adapters))
            elif name == "load_adapter":
                load_ms, ms = self.loaded.load_adapter(command["name"], Path(command["path"]))
                self.rep.emit("switched", adapter=command["name"], ms=round(ms, 3), load_ms=round(load_ms, 1),
                              path=str(self.loaded.adapters[command["name"]]), adapters=list(self.loaded.adapters))
        except BaseException as e:  # noqa: BLE001 - the session survives every command
            self._report(e, command.get("id"))

    # ---- generating -------------------------------------------------------------------------
    def generate(self, command: dict[str, Any]) -> None:
        request = command["id"]
        with self._lock:
            self._running = request
            if request in self._cancelled:
                self._stop.set()
        sides = command["sides"] or [s for s, status in self.loaded.side_status().items() if status["available"]]
        try:
            for side in sides:
                self._answer(request, side, command)
        finally:
            with self._lock:
                self._running = None
                self._cancelled.discard(request)
                self._stop.clear()

    def _answer(self, request: str, side: str, command: dict[str, Any]) -> None:
        from studio.core.data.render import check_template, render_prompt
        from studio.worker.generation import stream_reply

        sampling = command["sampling"]
        if self._stop.is_set():
            self._reply(request, side, None, sampling.seed, "stopped")
            return
        try:
            template = command.get("template") or "auto"
            template = self.template if template == "auto" else template
            problem = check_template(template)
            if problem:
                raise WorkerError(f"Chat template: {problem}", kind="config")
            conv = with_system(conversation_for(command, side), command.get("system"))
            if self.text_mode:
                conv = [{"role": "text", "content": conv[-1]["content"]}]
            prompt = render_prompt(conv, self.loaded.tokenizer, template, self.train_on)

            def on_text(text: str) -> None:
                self.rep.emit("token", id=request, side=side, text=text)
                if not self.rep.stdout_alive:  # the reader is gone (the GUI closed): stop generating for nobody
                    self._stop.set()

            with self.loaded.side(side) as model:
                reply = stream_reply(model, self.loaded.tokenizer, prompt.input_ids, sampling, on_text, self._stop,
                                     prompt.stop_texts, self.loaded.device)
        except BaseException as e:  # noqa: BLE001 - reported; the other side still answers
            self._report(e, request, side)
            self._reply(request, side, None, sampling.seed, "error")
            return
        self._reply(request, side, reply, sampling.seed, reply.stop_reason, len(prompt.input_ids))

    def _reply(self, request: str, side: str, reply: Any, seed: int, reason: str, prompt_tokens: int = 0) -> None:
        self.rep.emit("reply", id=request, side=side, text=reply.text if reply else "",
                      tokens=reply.tokens if reply else 0, first_token_s=reply.first_token_s if reply else 0.0,
                      tokens_per_s=reply.tokens_per_s if reply else 0.0, stop_reason=reason,
                      seconds=reply.seconds if reply else 0.0, prompt_tokens=prompt_tokens, seed=seed,
                      adapter=self.loaded.active if side == "tuned" else None)

    def _report(self, exc: BaseException, request: Optional[str] = None, side: Optional[str] = None) -> None:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise exc
        kind, message = classify(exc)
        if kind == "oom":
            message = OOM_ADVICE
            _free_memory(self.loaded.device)
        tb = traceback.format_exc()
        self.rep.log(tb.rstrip())
        self.rep.emit("error", message=message, kind=kind, id=request, side=side,
                      traceback=tb if kind == "internal" else None)


def _trained_on_text(target: Any, log: Any) -> bool:
    """Whether the run trained on raw text (continued pre-training): then prompts are continued, not chatted."""
    if target.run is None:
        return False
    spec = target.cfg.data
    if spec.format != "auto":
        return spec.format == "text"
    try:
        from studio.core.data.pipeline import head_detection

        return head_detection(spec, sample=50)[1].format == "text"
    except Exception as e:  # noqa: BLE001 - the data may be gone since; chatting needs no data
        log(f"chat: the run's data cannot be read to tell chat from plain text ({e}); chatting")
        return False


def _free_memory(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
