"""A side-by-side conversation as the chat worker's events fill it in (no Qt).

Each user message is an ``Exchange``: one prompt and a ``Reply`` per side asked. ``Transcript.ask``
opens one and gives the ``generate`` command's fields; ``apply`` takes the worker's token, reply and
error events and says which reply changed. A side's history is what that side saw: the earlier
exchanges it answered (a stopped answer keeps the text shown so far; a failed or empty one drops out
with its question), so base and tuned each continue their own conversation, as the CLI does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from studio.core.chat import SIDES

WAITING, STREAMING, DONE = "waiting", "streaming", "done"


@dataclass
class Reply:
    side: str
    state: str = WAITING
    text: str = ""
    tokens: int = 0
    first_token_s: float = 0.0
    tokens_per_s: float = 0.0
    stop_reason: str = ""  # end, length, stopped, error
    error: str = ""
    error_kind: str = ""
    adapter: Optional[str] = None  # the tuned side's adapter when it answered
    revision: int = 0  # bumped on every change, so a view repaints only what changed

    @property
    def finished(self) -> bool:
        return self.state == DONE

    @property
    def failed(self) -> bool:
        return self.stop_reason == "error" or bool(self.error)

    def _touch(self) -> None:
        self.revision += 1


@dataclass
class Exchange:
    id: str
    user: str
    replies: dict[str, Reply] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return all(r.finished for r in self.replies.values())


class Transcript:
    """The exchanges of one chat, oldest first."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._count = 0
        self._by_id: dict[str, Exchange] = {}

    @property
    def busy(self) -> bool:
        """An answer is still coming (the worker is generating or has the request queued)."""
        return any(not e.finished for e in self.exchanges)

    @property
    def pending(self) -> Optional[Exchange]:
        return next((e for e in reversed(self.exchanges) if not e.finished), None)

    def clear(self) -> None:
        self.exchanges.clear()
        self._by_id.clear()

    def history(self, side: str) -> list[dict[str, str]]:
        """The turns ``side`` has seen and answered, before the pending exchange."""
        turns: list[dict[str, str]] = []
        for e in self.exchanges:
            reply = e.replies.get(side)
            if reply is None or not reply.finished or reply.failed or not reply.text:
                continue
            turns += [{"role": "user", "content": e.user}, {"role": "assistant", "content": reply.text}]
        return turns

    def ask(self, text: str, sides: list[str], keep_history: bool = True) -> tuple[Exchange, dict[str, Any]]:
        """A new exchange for ``text`` answered by ``sides`` (in that order), and its generate fields:
        id, sides, and each side's own conversation ending with this message (only this message without
        ``keep_history``: each question asked alone, as a model trained on single-turn data knows them)."""
        if not sides or any(s not in SIDES for s in sides):
            raise ValueError(f"sides must be some of {SIDES}")
        messages = {s: (self.history(s) if keep_history else []) + [{"role": "user", "content": text}] for s in sides}
        self._count += 1
        exchange = Exchange(str(self._count), text, {s: Reply(s) for s in sides})
        self.exchanges.append(exchange)
        self._by_id[exchange.id] = exchange
        return exchange, {"id": exchange.id, "sides": list(sides), "messages": messages}

    def apply(self, event: dict[str, Any]) -> list[Reply]:
        """Take one worker event; the replies it changed (none for events about no known request)."""
        exchange = self._by_id.get(str(event.get("id")))
        if exchange is None:
            return []
        kind = event.get("type")
        side = event.get("side")
        if kind == "error" and side is None:  # the whole request failed: no reply events will follow
            return [self._fail(r, event) for r in exchange.replies.values() if not r.finished]
        reply = exchange.replies.get(side)
        if reply is None or reply.finished:
            return []
        if kind == "token":
            reply.state = STREAMING
            reply.text += str(event.get("text", ""))
        elif kind == "reply":
            reply.state = DONE
            reply.text = str(event.get("text", reply.text)) or reply.text
            reply.stop_reason = str(event.get("stop_reason", ""))
            reply.tokens = int(event.get("tokens") or 0)
            reply.first_token_s = float(event.get("first_token_s") or 0.0)
            reply.tokens_per_s = float(event.get("tokens_per_s") or 0.0)
            reply.adapter = event.get("adapter")
        elif kind == "error":
            reply.error = str(event.get("message", ""))
            reply.error_kind = str(event.get("kind", ""))
        else:
            return []
        reply._touch()
        return [reply]

    def fail_pending(self, message: str, kind: str = "internal") -> list[Reply]:
        """Every unfinished reply ends with ``message`` (the worker is gone)."""
        event = {"message": message, "kind": kind}
        return [self._fail(r, event) for e in self.exchanges for r in e.replies.values() if not r.finished]

    @staticmethod
    def _fail(reply: Reply, event: dict[str, Any]) -> Reply:
        reply.state = DONE
        reply.stop_reason = "error"
        reply.error = reply.error or str(event.get("message", ""))
        reply.error_kind = reply.error_kind or str(event.get("kind", ""))
        reply._touch()
        return reply
