"""`studio chat RUN [--checkpoint N] [--base | --side-by-side] --prompt "…"`: talk to a trained model.

Starts the same chat worker as the GUI (`python -m studio --worker chat …`, through
studio.core.launcher), waits until it has loaded the model, sends `generate` commands
(studio.core.chat) and prints the answer as it streams. By default the tuned model answers;
`--base` asks the base model, `--side-by-side` asks both with the same seed. Without `--prompt` it
is interactive: each line is a message in one conversation (each side keeps its own history),
`/reset` starts over, `/quit` or Ctrl-D ends; Ctrl-C stops an answer. The answer goes to stdout;
loading, speeds and errors go to stderr. Exit status: 0, 1 when the worker failed (e.g. the base
model moved: `--base-path DIR` points to it), 2 for bad arguments.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path
from typing import Any, Optional


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("chat", help="chat with a run's tuned model (and its base, side by side)",
                              description="Chat with a trained run or a plain model, headless, through the "
                                          "studio's chat worker.")
    p.add_argument("run", nargs="?", help="a run folder, or a run id from `studio runs`")
    p.add_argument("--checkpoint", type=int, help="the checkpoint at step N instead of the final weights")
    p.add_argument("--from", dest="source", help="these trained weights (a folder) instead")
    p.add_argument("--model", help="chat with a plain model (folder or hub id) instead of a run")
    p.add_argument("--base-path", help="the run's base model is in this folder now (it moved)")
    sides = p.add_mutually_exclusive_group()
    sides.add_argument("--base", action="store_true", help="the base model answers (the training switched off)")
    sides.add_argument("--side-by-side", action="store_true", help="the base and the tuned model answer, same seed")
    p.add_argument("--prompt", help="one message; without it the chat is interactive")
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--template", default="auto",
                   help="chat template: auto (the run's), chatml, alpaca, llama3, or a Jinja template (or @FILE)")
    p.add_argument("--temperature", type=float, help="sample at this temperature (default: greedy)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling (with --temperature)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the k likeliest tokens (with --temperature)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="longest answer in tokens")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="above 1 discourages repeating")
    p.add_argument("--seed", type=int, default=0, help="random seed (both sides use it)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the worker's log lines")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from pydantic import ValidationError

    from studio.core.chat import Sampling
    from studio.core.config import describe_validation_error

    if bool(args.run) == bool(args.model):
        print("studio chat: give a run (folder or id) or --model PATH, one of them", file=sys.stderr)
        return 2
    try:
        sampling = Sampling(greedy=args.temperature is None, temperature=args.temperature or 0.7, top_p=args.top_p,
                            top_k=args.top_k, max_new_tokens=args.max_new_tokens,
                            repetition_penalty=args.repetition_penalty, seed=args.seed)
    except ValidationError as e:
        print(f"studio chat: {describe_validation_error(e)}", file=sys.stderr)
        return 2
    template = args.template
    if template.startswith("@"):
        try:
            template = Path(template[1:]).expanduser().read_text(encoding="utf-8")
        except OSError as e:
            print(f"studio chat: --template {args.template}: {e}", file=sys.stderr)
            return 2
    session = _start(args, template)
    if session is None:
        return 2
    try:
        ready = session.wait_ready()
        if ready is None:
            return 1
        wanted = ["base", "tuned"] if args.side_by_side else ["base"] if args.base or args.model else ["tuned"]
        missing = [s for s in wanted if not ready["sides"].get(s, {}).get("available")]
        if missing:
            print(f"studio chat: no {missing[0]} side: {ready['sides'][missing[0]]['note']}", file=sys.stderr)
            return 2
        if args.prompt is not None:
            ok = session.ask({s: [{"role": "user", "content": args.prompt}] for s in wanted}, args.system, sampling)
            return 0 if ok else 1
        return _interactive(session, wanted, args.system, sampling)
    finally:
        session.close()


def _start(args: Any, template: str) -> Optional["ChatClient"]:
    from studio.cli.export import resolve_run
    from studio.core.launcher import spawn_worker

    extra: list[str] = []
    run_ = None
    if args.model:
        folder = Path(args.model).expanduser()
        extra += ["--model", str(folder.resolve()) if folder.is_dir() else args.model]  # the worker runs elsewhere
    else:
        try:
            run_ = resolve_run(args.run)
        except FileNotFoundError as e:
            print(f"studio chat: {e}", file=sys.stderr)
            return None
    if args.checkpoint is not None:
        extra += ["--checkpoint", str(args.checkpoint)]
    if args.source:
        extra += ["--from", str(Path(args.source).expanduser().resolve())]
    if args.base_path:
        extra += ["--base-path", str(Path(args.base_path).expanduser().resolve())]
    if template != "auto":
        extra += ["--template", template]
    return ChatClient(spawn_worker(run_, "chat", *extra, interactive=True), verbose=args.verbose)


def _interactive(session: "ChatClient", sides: list[str], system: Optional[str], sampling: Any) -> int:
    history: dict[str, list[dict[str, str]]] = {s: [] for s in sides}
    print("Type a message; /reset starts over, /quit (or Ctrl-D) ends, Ctrl-C stops an answer.", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        if text == "/reset":
            history = {s: [] for s in sides}
            print("(new conversation)", file=sys.stderr)
            continue
        for s in sides:
            history[s].append({"role": "user", "content": line})
        replies = session.ask(history, system, sampling)
        if not replies:
            for s in sides:
                history[s].pop()
            if not session.alive():
                return 1
            continue
        for s in sides:
            history[s].append({"role": "assistant", "content": replies[s]})


class ChatClient:
    """The chat worker from the terminal: its events on a queue, commands written to its stdin."""

    def __init__(self, proc: Any, verbose: bool = False):
        self.proc = proc
        self.verbose = verbose
        self.events: "queue.Queue[Optional[dict]]" = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True, name="chat-events").start()

    def _read(self) -> None:
        from studio.core.protocol import ProtocolError, decode

        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace")
            try:
                event = decode(line)
            except ProtocolError as e:
                print(f"protocol: {e}", file=sys.stderr)
                continue
            if event is None:
                if self.verbose and line.strip():
                    print(f"  | {line.rstrip()}", file=sys.stderr)
                continue
            self.events.put(event)
        self.events.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, cmd: str, /, **fields: Any) -> bool:
        from studio.core.chat import command_line

        try:
            self.proc.stdin.write(command_line(cmd, **fields).encode("utf-8"))
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def wait_ready(self) -> Optional[dict]:
        while True:
            event = self.events.get()
            if event is None:
                print(f"studio chat: the worker exited (code {self.proc.wait()}) before it was ready", file=sys.stderr)
                return None
            if event["type"] == "phase":
                print(f"{event['phase'].replace('_', ' ')}: {event.get('detail', '')}", file=sys.stderr)
            elif event["type"] == "error":
                _print_error(event)
            elif event["type"] == "done":
                return None
            elif event["type"] == "ready":
                adapter = f", adapter {event['adapter']}" if event.get("adapter") else ""
                quant = f", {event['quantized']}" if event.get("quantized") else ""
                print(f"ready in {event['load_s']:.1f} s: {event['model']} on {event['device']}"
                      f"{quant}{adapter}; template {event.get('template')}", file=sys.stderr)
                for note in event.get("notes") or []:
                    print(f"note: {note}", file=sys.stderr)
                return event

    def ask(self, messages: dict[str, list[dict[str, str]]], system: Optional[str], sampling: Any) -> Optional[dict]:
        """Send one generate, print its answers as they stream; {side: text}, or None after an error."""
        self._next_id += 1
        request = str(self._next_id)
        sides = list(messages)
        fields: dict[str, Any] = {"id": request, "messages": messages, "sides": sides, "sampling": sampling}
        if system:
            fields["system"] = system
        if not self.send("generate", **fields):
            print("studio chat: the worker is gone", file=sys.stderr)
            return None
        replies: dict[str, str] = {}
        failed = False
        current: Optional[str] = None
        while len(replies) < len(sides):
            try:
                event = self.events.get()
            except KeyboardInterrupt:
                self.send("stop", id=request)
                continue
            if event is None:
                print("\nstudio chat: the worker exited", file=sys.stderr)
                return None
            if event.get("id") != request:
                if event["type"] == "error":
                    _print_error(event)
                continue
            side = event.get("side")
            if event["type"] == "token":
                if side != current:
                    current = side
                    if len(sides) > 1:
                        print(f"--- {side} ---", flush=True)
                print(event["text"], end="", flush=True)
            elif event["type"] == "error":
                failed = True
                _print_error(event)
            elif event["type"] == "reply":
                if side != current and len(sides) > 1:
                    print(f"--- {side} ---", flush=True)
                current = None
                replies[side] = event["text"]
                print(flush=True)
                print(f"[{side}: {event['tokens']} tokens, first token {event['first_token_s']:.3f} s, "
                      f"{event['tokens_per_s']:.1f} tokens/s, {event['stop_reason']}]", file=sys.stderr, flush=True)
        return None if failed else replies

    def close(self) -> None:
        import subprocess

        self.send("quit")
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _print_error(event: dict) -> None:
    print(f"error ({event.get('kind')}): {event['message']}", file=sys.stderr, flush=True)
