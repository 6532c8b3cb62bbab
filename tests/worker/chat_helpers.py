"""A chat worker process for tests: commands in, events out (read on a thread), with timeouts."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from typing import Any, Optional

from studio.core.chat import command_line
from studio.core.protocol import decode


class ChatProcess:
    """``python -m studio --worker chat ...`` started through the launcher, as the GUI and the CLI start it."""

    def __init__(self, run: Any, *args: str):
        from studio.core.launcher import spawn_worker

        self.proc = spawn_worker(run, "chat", *args, interactive=True)
        self.events: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace")
            event = decode(line)
            if event is None:
                self.log.append(line.rstrip())
            else:
                self.events.put(event)
        self.events.put(None)

    def send(self, cmd: str, /, **fields: Any) -> None:
        self.proc.stdin.write(command_line(cmd, **fields).encode())
        self.proc.stdin.flush()

    def send_raw(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def next_event(self, timeout: float = 60.0) -> dict:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no event within %.0fs; log:\n%s" % (timeout, "\n".join(self.log[-30:]))) from None
        if event is None:
            raise AssertionError(f"the worker exited ({self.proc.wait()}):\n" + "\n".join(self.log[-30:]))
        return event

    def until(self, type_: str, timeout: float = 60.0, **match: Any) -> tuple[dict, list[dict]]:
        """Events up to and including the first of ``type_`` whose fields equal ``match``."""
        seen = []
        deadline = time.time() + timeout
        while True:
            event = self.next_event(max(0.1, deadline - time.time()))
            seen.append(event)
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return event, seen

    def replies(self, request: str, sides: int, timeout: float = 60.0) -> tuple[dict[str, dict], list[dict]]:
        """The reply of every side of a request, and every event up to the last one."""
        out: dict[str, dict] = {}
        seen: list[dict] = []
        while len(out) < sides:
            event, more = self.until("reply", timeout, id=request)
            seen += more
            out[event["side"]] = event
        return out, seen

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
