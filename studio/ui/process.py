"""WorkerProcess: starts (or re-attaches to) a worker process and turns its output into Qt signals.

A run must be able to outlive the GUI, so the worker is a plain ``subprocess.Popen`` child in its
own session (QProcess would kill it when destroyed). A reader thread drains its stdout
continuously (an unread pipe would block the child) and hands each line to the GUI thread
through a queued signal. Protocol lines become ``sig_event_received``, everything else
``sig_log_received``; ``sig_finished(state, message)`` comes exactly once.

A run whose worker is alive but is not our child (the GUI was restarted) is followed instead by
tailing ``events.jsonl`` and ``worker.log`` from a QTimer; stopping and killing work the same.

An interactive worker (the chat worker: ``interactive=True``, ``run`` None for a plain model) also
takes commands: ``send`` queues one for a writer thread that writes it to the worker's stdin as one
JSON line (studio.core.chat.command_line), so a worker slow to read never blocks the GUI; ``stop``
asks it to quit and closes its stdin.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from studio.core.chat import command_line
from studio.core.protocol import ProtocolError, decode
from studio.core.launcher import spawn_worker, worker_command
from studio.core.runs import ACTIVE_STATES, Run, RunState, pid_alive, process_started

DEFAULT_STOP_TIMEOUT_S = 60.0
DONE_GRACE_S = 30.0  # a worker that reported "done" but does not exit is killed after this
LOG_TAIL_LINES = 12
LOG_TAIL_MARKER = "\n\nLast log lines:\n"  # a failure message's log tail follows this (for status.json)


class _LineBridge(QObject):
    """Carries lines from the reader thread to the GUI thread (queued connection)."""

    sig_line_read = Signal(str)
    sig_stream_closed = Signal()


class WorkerProcess(QObject):
    sig_event_received = Signal(dict)
    sig_log_received = Signal(str)
    sig_finished = Signal(str, str)  # final state, message for the user

    def __init__(self, run: Optional[Run], kind: str = "train", extra_args: tuple[str, ...] = (),
                 stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S, parent: Optional[QObject] = None,
                 interactive: bool = False):
        super().__init__(parent)
        self.run = run
        self.kind = kind
        self.interactive = interactive
        self._commands: Optional["queue.Queue[Optional[bytes]]"] = None
        self.extra_args = tuple(extra_args)
        self.stop_timeout_s = stop_timeout_s
        self.pid: Optional[int] = None
        self._pid_started: Optional[float] = None
        self._proc: Optional[subprocess.Popen] = None
        self._attached = False
        self._finished = False
        self._stop_requested = False
        self._killed_after_timeout = False
        self._last_step: Optional[int] = None
        self._done: Optional[dict] = None
        self._error: Optional[dict] = None
        self._artifacts: list[dict] = []
        self._log_tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._kill_timer = QTimer(self, singleShot=True)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)
        self.done_grace_s = DONE_GRACE_S
        self._done_timer = QTimer(self, singleShot=True)
        self._done_timer.timeout.connect(self._on_done_timer_timeout)
        self._bridge = _LineBridge()
        self._bridge.sig_line_read.connect(self._on_reader_line, Qt.ConnectionType.QueuedConnection)
        self._bridge.sig_stream_closed.connect(self._on_reader_closed, Qt.ConnectionType.QueuedConnection)
        # attached mode: tail files
        self._poll_timer = QTimer(self)
        self._poll_timer.timeout.connect(self._on_poll_timer_timeout)
        self._events_offset = 0
        self._log_offset = 0
        self._events_rest = b""
        self._log_rest = b""

    # ---- starting -----------------------------------------------------------------------
    def command(self) -> list[str]:
        return worker_command(self.kind, self.run.path if self.run is not None else None, *self.extra_args)

    def start(self) -> None:
        """Launch the worker; raises OSError with a readable message if it cannot start."""
        self._proc = spawn_worker(self.run, self.kind, *self.extra_args, interactive=self.interactive)
        self.pid = self._proc.pid
        self._pid_started = process_started(self.pid)
        threading.Thread(target=self._read_stdout, args=(self._proc.stdout,), daemon=True,
                         name=f"worker-reader-{self.pid}").start()
        if self.interactive:
            self._commands = queue.Queue()
            threading.Thread(target=_write_commands, args=(self._proc.stdin, self._commands), daemon=True,
                             name=f"worker-writer-{self.pid}").start()

    # ---- commands (interactive workers) ----------------------------------------------------
    def send(self, cmd: str, /, **fields) -> bool:
        """Queue one command for the worker's stdin (checked by studio.core.chat.command_line, which raises
        CommandError for a malformed one); False when the worker cannot take commands (any more)."""
        line = command_line(cmd, **fields)
        if self._commands is None or self._finished or self._stop_requested:
            return False
        self._commands.put(line.encode("utf-8"))
        return True

    def _close_stdin(self) -> None:
        if self._commands is not None:
            self._commands.put(None)
            self._commands = None

    def attach(self, poll_ms: int = 300) -> None:
        """Follow a run whose live worker another GUI started: tail its files, watch its pid."""
        self._attached = True
        status = self.run.status()
        self.pid = int(status.get("pid") or 0) or None
        self._pid_started = status.get("pid_started")
        self._poll_timer.start(poll_ms)
        self._on_poll_timer_timeout()

    # ---- state --------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._attached

    def is_running(self) -> bool:
        return (self.pid is not None or self._attached) and not self._finished

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def last_step(self) -> Optional[int]:
        return self._last_step

    # ---- stopping -----------------------------------------------------------------------
    def stop(self) -> None:
        """Ask for a graceful stop; kill the worker if it has not exited within the timeout."""
        if self._finished or self._stop_requested:
            return
        if self.interactive:  # it reads commands: quit (after stopping an answer), then the end of its stdin
            self.send("stop")
            self.send("quit")
            self._stop_requested = True
            self._close_stdin()
            self._kill_timer.start(int(self.stop_timeout_s * 1000))
            return
        self._stop_requested = True
        self.run.request_stop()
        if self.kind == "train":
            self.run.write_status(state=RunState.STOPPING)
        self._kill_timer.start(int(self.stop_timeout_s * 1000))

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group)."""
        pid = self.pid
        if not pid or self._finished:
            return
        if not pid_alive(pid, self._pid_started):
            return  # gone already, or the pid now belongs to another program: never signal that one
        try:
            if os.name == "nt":  # pragma: no cover
                if self._proc:
                    self._proc.kill()
                else:
                    os.kill(pid, signal.SIGTERM)
            else:
                os.killpg(pid, signal.SIGKILL)  # session leader: its pgid is its pid
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, signal.SIGKILL)

    def detach(self) -> None:
        """Stop following without touching the worker (the GUI exits, the run keeps training)."""
        self._kill_timer.stop()
        self._poll_timer.stop()
        self._finished = True
        try:
            self._bridge.sig_line_read.disconnect(self._on_reader_line)
            self._bridge.sig_stream_closed.disconnect(self._on_reader_closed)
        except (RuntimeError, TypeError):
            pass

    def _on_kill_timer_timeout(self) -> None:
        if self._finished:
            return
        self._killed_after_timeout = True
        self.kill()
        if self._attached:
            self._on_poll_timer_timeout()

    def _on_done_timer_timeout(self) -> None:
        if not self._finished:  # the outcome is known; only a hung exit (a stuck thread) is left
            self._log(f"[studio] the worker reported its outcome but did not exit within {self.done_grace_s:g} s; killed it")
            self.kill()

    # ---- own child: reader thread -> GUI thread ----------------------------------------
    def _read_stdout(self, stream) -> None:
        bridge = self._bridge
        try:
            for raw in iter(stream.readline, b""):
                bridge.sig_line_read.emit(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        except (OSError, ValueError, RuntimeError):  # RuntimeError: the GUI is shutting down
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass
            try:
                bridge.sig_stream_closed.emit()
            except RuntimeError:  # the studio exited while the run goes on: nobody is listening
                pass

    def _on_reader_line(self, line: str) -> None:
        self._handle_line(line, from_file=False)

    def _on_reader_closed(self) -> None:
        self._close_stdin()
        returncode = self._proc.wait() if self._proc else None
        self._finish(returncode)

    def _handle_line(self, line: str, from_file: bool) -> None:
        try:
            event = decode(line) if not from_file else _decode_json(line)
        except ProtocolError as e:
            self._log(f"[studio] {e}: {line[:200]}")
            return
        if event is None:
            self._log(line)
            return
        kind = event.get("type")
        if kind == "hello":  # a new attempt (a resumed run): the outcome of an earlier one no longer counts
            self._done = self._error = None
        if kind == "step" and isinstance(event.get("step"), int):
            self._last_step = event["step"]
        elif kind == "done":
            self._done = event
            if not self._attached:
                self._done_timer.start(int(self.done_grace_s * 1000))
        elif kind == "error" and not (self.interactive and (event.get("id") or event.get("kind") == "command")):
            self._error = event  # a chat worker lives on after a failed request or a bad command
        elif kind == "artifact":
            self._artifacts.append(event)
        self.sig_event_received.emit(event)

    def _log(self, line: str) -> None:
        self._log_tail.append(line)
        self.sig_log_received.emit(line)

    # ---- attached: tail files -----------------------------------------------------------
    def _on_poll_timer_timeout(self) -> None:
        if self._finished:
            return
        alive = bool(self.pid) and pid_alive(self.pid, self._pid_started)
        self._events_offset, self._events_rest = tail_lines(
            self.run.events_path, self._events_offset, self._events_rest, lambda s: self._handle_line(s, True))
        self._log_offset, self._log_rest = tail_lines(self.run.log_path, self._log_offset, self._log_rest, self._log)
        if not alive:
            self._poll_timer.stop()
            self._finish(None)

    # ---- the end ------------------------------------------------------------------------
    def _finish(self, returncode: Optional[int]) -> None:
        if self._finished:
            return
        self._finished = True
        self._kill_timer.stop()
        self._done_timer.stop()
        self._poll_timer.stop()
        state, message = self._outcome(returncode)
        if self.kind == "train":
            status = self.run.status()
            if RunState.of(status.get("state")) in ACTIVE_STATES or state == RunState.KILLED:
                self.run.write_status(state=state, ended=time.time(), message=message)
        self.sig_finished.emit(state, message)

    def _outcome(self, returncode: Optional[int]) -> tuple[str, str]:
        tail = "\n".join(self._log_tail) or (self.run.log_tail(LOG_TAIL_LINES) if self.run is not None else "")
        with_tail = (lambda m: f"{m}{LOG_TAIL_MARKER}{tail}") if tail else (lambda m: m)
        if self._killed_after_timeout:
            return RunState.KILLED, f"Did not stop within {self.stop_timeout_s:g} s; killed."
        if self._done is not None:
            status = self._done.get("status", RunState.FAILED)
            message = self._done.get("message") or ""
            if status == RunState.STOPPED and self.kind == "train":
                saved = any(a.get("kind") == "adapter" for a in self._artifacts) or self.run.adapter_dir.exists()
                step = f"step {self._last_step}" if self._last_step is not None else "the current step"
                message = f"Stopped after finishing {step}" + (", adapter saved." if saved else ".")
            elif status == RunState.COMPLETED and not message:
                message = "Finished."
            elif status == RunState.FAILED:
                message = message or (self._error or {}).get("message") or "The worker failed."
                return RunState.FAILED, with_tail(message)
            return status, message
        if self._attached:
            status = self.run.status()
            state = status.get("state", RunState.FAILED)
            if RunState.of(state) in ACTIVE_STATES:
                return RunState.FAILED, with_tail("The worker stopped without finishing (killed or crashed).")
            return state, status.get("message") or state
        if self._error is not None:
            return RunState.FAILED, with_tail(self._error.get("message") or "The worker failed.")
        if returncode is not None and returncode < 0:
            name = _signal_name(-returncode)
            hint = " (the system may have run out of memory)" if -returncode == getattr(signal, "SIGKILL", 9) else ""
            return RunState.FAILED, with_tail(f"The worker was killed by {name}{hint}.")
        if returncode:
            return RunState.FAILED, with_tail(f"The worker exited with status {returncode} without finishing.")
        return RunState.FAILED, with_tail("The worker exited without reporting an outcome.")


def _write_commands(stream, commands: "queue.Queue[Optional[bytes]]") -> None:
    """The writer thread of an interactive worker: each queued line to its stdin; None (or a gone reader) ends it."""
    try:
        while True:
            line = commands.get()
            if line is None:
                break
            stream.write(line)
            stream.flush()
    except (OSError, ValueError):  # the worker exited: its reader thread reports the outcome
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


def split_log_tail(message: str) -> tuple[str, str]:
    """(what happened, the last log lines) of a finished worker's message; the tail may be ""."""
    summary, _, tail = message.partition(LOG_TAIL_MARKER)
    return summary.strip(), tail


def _decode_json(line: str) -> Optional[dict]:
    import json

    line = line.strip()
    if not line:
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "type" in event else None


def tail_lines(path: Path, offset: int, rest: bytes, emit) -> tuple[int, bytes]:
    """Emit the complete new lines of a growing file; keep a torn last line for next time."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset, rest
    if not data:
        return offset, rest
    new_offset = offset + len(data)
    *lines, rest = (rest + data).split(b"\n")
    for raw in lines:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if text:
            emit(text)
    return new_offset, rest


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
