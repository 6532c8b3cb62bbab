"""The worker's voice: protocol events, the log, status.json and the stop signal.

Every event is appended to ``RUN_DIR/events.jsonl`` first (the durable record) and then printed
as a protocol line on stdout for a live GUI or CLI. Everything else the process prints (our own
messages, Python warnings, ``logging``, transformers' chatter) goes to ``RUN_DIR/worker.log`` and
is forwarded to stdout as plain lines for the log pane.

Losing stdout (the GUI closed: EPIPE) must never stop or block training, so a failed stdout write
switches stdout off for good and the run carries on writing to disk.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from studio.core.protocol import encode, encode_json, make_event
from studio.core.runs import Run


_LIBRARY_LOGGERS = ("transformers", "peft", "accelerate", "datasets", "huggingface_hub", "bitsandbytes", "torch")


class _Stdout:
    """The real stdout, written in whole lines, that turns itself off when the reader is gone."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.alive = stream is not None
        self._lock = threading.Lock()

    def write_line(self, line: str) -> None:
        if not self.alive:
            return
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
                self._go_dark()

    def _go_dark(self) -> None:
        self.alive = False
        # Point fd 1 at /dev/null so that the interpreter's final flush cannot raise again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


class _LogStream(io.TextIOBase):
    """A text stream that sends complete lines to the reporter's log (stands in for sys.stdout/err)."""

    def __init__(self, reporter: "Reporter"):
        self._reporter = reporter
        self._buf = ""

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self._buf += s
        # Progress bars redraw with \r; keep only the last state of each line.
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._reporter.log(line.rsplit("\r", 1)[-1])
        return len(s)

    def flush(self) -> None:
        if "\r" in self._buf:
            self._reporter.log(self._buf.rsplit("\r", 1)[-1])
            self._buf = ""

    def isatty(self) -> bool:
        return False


class _LogHandler(logging.Handler):
    def __init__(self, reporter: "Reporter"):
        super().__init__(logging.INFO)
        self._reporter = reporter
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._reporter.log(self.format(record))
        except Exception:  # a log line must never break the run
            pass


class Reporter:
    """Owns the run directory's record while a worker runs. Use as a context manager."""

    def __init__(self, run_dir: str | Path, *, capture: bool = True, events_path: Optional[Path] = None,
                 log_path: Optional[Path] = None, record: bool = True):
        """Events and log go to the run's events.jsonl and worker.log unless other files are given
        (an export keeps its own record so the training record stays as it was). With ``record``
        False events go to stdout only (a chat's token stream is nothing to keep)."""
        self.run = Run(Path(run_dir))
        self.run.path.mkdir(parents=True, exist_ok=True)
        self._stdout = _Stdout(sys.stdout)
        self.events_path = Path(events_path or self.run.events_path)
        self.log_path = Path(log_path or self.run.log_path)
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        self._events = open(self.events_path if record else os.devnull, "a", encoding="utf-8")
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._capture = capture
        self._saved: Optional[tuple[Any, Any, Any]] = None
        self._signalled: Optional[str] = None

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Reporter":
        if self._capture:
            self._saved = (sys.stdout, sys.stderr, logging.getLogger().handlers[:])
            self._saved_filters = warnings.filters[:]
            sys.stdout = _LogStream(self)  # type: ignore[assignment]
            sys.stderr = _LogStream(self)  # type: ignore[assignment]
            root = logging.getLogger()
            root.handlers = [_LogHandler(self)]
            # Libraries that print through their own handler (transformers: a stderr handler bound at
            # import, propagate=False) are routed through the root handler, so nothing bypasses the log.
            self._saved_libs = {}
            for name in _LIBRARY_LOGGERS:
                if name in logging.Logger.manager.loggerDict:
                    lib = logging.getLogger(name)
                    self._saved_libs[name] = (lib.handlers[:], lib.propagate)
                    lib.handlers, lib.propagate = [], True
            root.setLevel(logging.INFO)
            logging.captureWarnings(True)
            warnings.simplefilter("default")
            os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._saved is not None:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            sys.stdout, sys.stderr, handlers = self._saved
            logging.getLogger().handlers = handlers
            for name, (lib_handlers, propagate) in self._saved_libs.items():
                lib = logging.getLogger(name)
                lib.handlers, lib.propagate = lib_handlers, propagate
            logging.captureWarnings(False)
            warnings.filters[:] = self._saved_filters
            self._saved = None
        for f in (self._events, self._log):
            try:
                f.close()
            except OSError:
                pass

    # ---- output ----------------------------------------------------------------------------
    def emit(self, type_: str, **payload: Any) -> dict[str, Any]:
        event = make_event(type_, **payload)
        with self._lock:
            try:
                self._events.write(encode_json(event) + "\n")
                self._events.flush()
            except OSError as e:  # disk full: the live stream still tells the GUI
                self._stdout.write_line(f"cannot write events.jsonl: {e}")
        self._stdout.write_line(encode(event))
        return event

    def log(self, line: str) -> None:
        with self._lock:
            try:
                self._log.write(line + "\n")
                self._log.flush()
            except (OSError, ValueError):
                pass
        self._stdout.write_line(line)

    @property
    def stdout_alive(self) -> bool:
        return self._stdout.alive

    # ---- status and stopping ---------------------------------------------------------------
    def set_status(self, **fields: Any) -> None:
        try:
            self.run.write_status(**fields)
        except OSError as e:
            self.log(f"cannot write status.json: {e}")

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT ask for a graceful stop: finish the step, save, report 'stopped'."""

        def handler(signum: int, _frame: Any) -> None:
            self._signalled = signal.Signals(signum).name
            self.log(f"received {self._signalled}: stopping after the current step")

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handler)
            except (ValueError, OSError):  # not the main thread (tests)
                pass

    def stop_requested(self) -> bool:
        return self._signalled is not None or self.run.stop_requested()

    def stop_reason(self) -> str:
        return f"signal {self._signalled}" if self._signalled else "stop requested"


def now() -> float:
    return round(time.time(), 3)
