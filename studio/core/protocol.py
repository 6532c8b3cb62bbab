"""The worker -> GUI line protocol.

A protocol line is ``@@studio/<version> <json>``; the JSON object always has ``type`` and ``t``
(unix time). Any other line on the worker's stdout is library chatter and belongs to the log.
The same event objects (without the prefix) are appended to ``events.jsonl`` in the run
directory, which is the durable record the GUI re-reads after a restart.

Event types (payload keys besides ``type`` and ``t``):
    hello      pid, version, argv                       worker started
    phase      phase ("loading_model", "loading_data", "training", "saving", "exporting", ...), detail
    plan       total_steps, epochs, steps_per_epoch, train_rows, val_rows, trainable_params,
               total_params, device, precision, choices (dict of engine decisions)
    step       step, total_steps, epoch, loss, lr, grad_norm, tokens, tokens_per_s,
               elapsed_s, eta_s, mem_allocated, mem_reserved, mem_peak_allocated, mem_peak_reserved
    eval       step, val_loss
    checkpoint step, path
    progress   label, current, total                     generic progress (export, download, ...)
    artifact   kind ("adapter", "merged", "checkpoint"), path
    warning    message
    error      message, kind ("oom", "data", "model", "config", "disk", "diverged", "internal"), traceback
    done       status ("completed", "stopped", "failed"), message
    genspeed   mode ("adapter" = unmerged, hot-swappable; "merged" = folded in), tokens_per_s,
               ms_per_token, new_tokens, batch, prompt_tokens, device, dtype   (``--worker genspeed``)
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

PROTOCOL_VERSION = 1
PREFIX = f"@@studio/{PROTOCOL_VERSION} "
_ANY_PREFIX = "@@studio/"

EVENT_TYPES = frozenset(
    {"hello", "phase", "plan", "step", "eval", "checkpoint", "progress", "artifact", "warning", "error", "done",
     "genspeed"}
)
DONE_STATUSES = ("completed", "stopped", "failed")


class ProtocolError(ValueError):
    pass


def make_event(type_: str, **payload: Any) -> dict[str, Any]:
    if type_ not in EVENT_TYPES:
        raise ProtocolError(f"unknown event type {type_!r}")
    return {"type": type_, "t": round(time.time(), 3), **payload}


def encode(event: dict[str, Any]) -> str:
    """One protocol line (no trailing newline)."""
    return PREFIX + json.dumps(event, separators=(",", ":"), default=_json_default)


def encode_json(event: dict[str, Any]) -> str:
    """One events.jsonl line (no trailing newline)."""
    return json.dumps(event, separators=(",", ":"), default=_json_default)


def decode(line: str) -> Optional[dict[str, Any]]:
    """The event on a protocol line, or None for a plain log line.

    Raises ProtocolError for a line from a different protocol version or with a broken payload,
    so a version mismatch between GUI and worker is loud rather than silent.
    """
    line = line.rstrip("\r\n")
    if not line.startswith(_ANY_PREFIX):
        return None
    head, _, payload = line.partition(" ")
    version = head[len(_ANY_PREFIX):]
    if version != str(PROTOCOL_VERSION):
        raise ProtocolError(f"worker speaks protocol {version}, this studio speaks {PROTOCOL_VERSION}")
    try:
        event = json.loads(payload)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"broken protocol payload: {e}") from e
    if not isinstance(event, dict) or "type" not in event:
        raise ProtocolError("protocol payload is not an event object")
    return event


def read_events(path) -> list[dict[str, Any]]:
    """All events in an events.jsonl file; a torn last line (worker killed mid-write) is skipped."""
    events: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    ev = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if isinstance(ev, dict) and "type" in ev:
                    events.append(ev)
    except FileNotFoundError:
        pass
    return events


def _json_default(o: Any) -> Any:
    try:  # numpy / torch scalars
        return o.item()
    except AttributeError:
        return str(o)
