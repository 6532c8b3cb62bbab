"""The worker -> GUI line protocol.

A protocol line is ``@@studio/<version> <json>``; the JSON object always has ``type`` and ``t``
(unix time). Any other line on the worker's stdout is library chatter and belongs to the log.
The same event objects (without the prefix) are appended to ``events.jsonl`` in the run
directory, which is the durable record the GUI re-reads after a restart.

``EVENTS`` below is the one list of event types and their fields (required, then optional):
``make_event`` refuses a type or a field it does not list, so what the worker emits and what
readers may rely on cannot drift apart (tests run the worker and check its events against it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional

PROTOCOL_VERSION = 1
PREFIX = f"@@studio/{PROTOCOL_VERSION} "
_ANY_PREFIX = "@@studio/"



@dataclass(frozen=True)
class EventSpec:
    """The fields one event type carries besides ``type`` and ``t``."""

    doc: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.required + self.optional)


_MEMORY = ("mem_allocated", "mem_reserved", "mem_peak_allocated", "mem_peak_reserved")

EVENTS: dict[str, EventSpec] = {
    "hello": EventSpec("a worker started (pid_started: its process start time, so a reused pid is not it)",
                       ("pid", "version", "argv"), ("pid_started",)),
    "phase": EventSpec("what the worker is doing now: loading_data, loading_model, resuming, training, evaluating, "
                       "saving, exporting, measuring", ("phase",), ("detail",)),
    "plan": EventSpec("the run's shape, once before training; choices = engine decisions (studio.core.engine_choice)",
                      ("total_steps", "epochs", "steps_per_epoch", "train_rows", "val_rows", "trainable_params",
                       "total_params", "device", "precision"), ("effective_batch", "choices", "data")),
    "step": EventSpec("one logged optimizer step (memory counters on CUDA only)",
                      ("step", "total_steps", "loss", "lr", "tokens", "tokens_per_s", "elapsed_s", "eta_s"),
                      ("epoch", "grad_norm", "padded_tokens_per_s", "step_time_s") + _MEMORY),
    "eval": EventSpec("validation loss at a step", ("step", "val_loss")),
    "checkpoint": EventSpec("a resumable checkpoint was written", ("step", "path")),
    "progress": EventSpec("generic progress (export, download, upload, ...); unit 'bytes' when current and total "
                          "count bytes", ("label", "current", "total"), ("unit",)),
    "artifact": EventSpec("a file or folder the job produced: adapter, merged, gguf, checkpoint", ("kind", "path")),
    "estimate": EventSpec("what an export will weigh and take, before any work (GGUF: studio.core.gguf_plan); "
                          "detail: the same in words", ("kind", "size_bytes", "seconds"), ("quant", "detail")),
    "verification": EventSpec("the export reloaded as its users will and compared with its source "
                              "(studio.worker.verify): passed, a one-line summary (FAILED or PASSED first), the "
                              "verification.json written, checks [{name, passed, detail}]",
                              ("kind", "passed", "summary", "path"), ("checks",)),
    "warning": EventSpec("something the user should know; the job goes on", ("message",), ("step", "kind")),
    "error": EventSpec("why the job failed; kind: oom, data, model, config, disk, diverged, command (a chat "
                       "command the worker cannot read), auth (a Hub token refused or without the rights), "
                       "network, internal (only internal carries the traceback). A chat "
                       "worker stays alive after an error with an id (the request) or kind command; path: where "
                       "a missing base model was looked for", ("message", "kind"), ("traceback", "id", "side", "path")),
    "done": EventSpec("the job's outcome, last: completed, stopped or failed", ("status",), ("message",)),
    "push": EventSpec("an upload to the Hugging Face Hub starts (``--worker push``): what goes where",
                      ("repo_id", "folder", "kind", "private", "files", "bytes"), ("account",)),
    "pushed": EventSpec("the upload completed: sent = files uploaded now, kept = files the repo already had",
                        ("repo_id", "url", "private", "sent", "kept", "sent_bytes"), ("commit",)),
    "genspeed": EventSpec("generation speed of the trained result (``--worker genspeed``): adapter = unmerged, "
                          "hot-swappable; merged = folded in",
                          ("mode", "tokens_per_s", "ms_per_token", "new_tokens", "batch", "prompt_tokens", "device"),
                          ("dtype", "method", "seconds")),
    # ---- the chat worker (``--worker chat``; its stdin commands: studio.core.chat.COMMANDS) ----
    "ready": EventSpec("the chat worker loaded its model and reads commands. sides: {base|tuned: {available, "
                       "note}}; mode: adapter (PEFT, base = adapter switched off), swap (full-parameter weights "
                       "swapped with the base's from CPU memory) or plain (a model without trained weights); "
                       "template: the chat template (tokenizer = the model's own or a custom one, chatml, alpaca, "
                       "llama3, text = plain continuation); adapter: the tuned side's name",
                       ("model", "sides", "device", "load_s"),
                       ("precision", "quantized", "mode", "method", "adapter", "adapters", "checkpoint", "source",
                        "template", "notes")),
    "token": EventSpec("new text of an answer being generated (request id, side)", ("id", "side", "text")),
    "reply": EventSpec("one side of a generate request finished (always exactly one per side, last). stop_reason: "
                       "end (EOS or end of turn), length (max new tokens), stopped, error (an error event came "
                       "first); first_token_s includes reading the prompt; tokens_per_s is the speed after the "
                       "first token",
                       ("id", "side", "text", "tokens", "first_token_s", "tokens_per_s", "stop_reason"),
                       ("seconds", "prompt_tokens", "seed", "adapter")),
    # ---- the evaluation worker (``--worker eval``; its result file: studio.core.evaluation) ----
    "eval_row": EventSpec("one row of the evaluation table as it fills in (again once its answers are scored): "
                          "label base, step-N or final; path: its trained weights (export --from); scores 0-100",
                          ("label", "step", "val_loss", "perplexity"),
                          ("path", "loss_tokens", "samples", "exact_match", "rouge_l", "bleu", "chrf")),
    "eval_sample": EventSpec("one held-out prompt with the reference and each generated label's answer "
                             "(scores: {label: {exact_match, rouge_l, bleu, chrf}} when there is a reference)",
                             ("index", "prompt", "reference", "answers"), ("scores",)),
    "eval_result": EventSpec("the evaluation's table, last before done; path: the JSON file written (also "
                             "eval/latest.json); best: the lowest validation loss; generated: the labels that answered",
                             ("path", "rows", "best", "generated"), ("throughput",)),
    "switched": EventSpec("the tuned side now uses this adapter; ms: the switch, load_ms: reading it from disk "
                          "(load_adapter only)", ("adapter", "ms"), ("load_ms", "path", "adapters")),
}
EVENT_TYPES = frozenset(EVENTS)
DONE_STATUSES = ("completed", "stopped", "failed")
ERROR_KINDS = ("oom", "data", "model", "config", "disk", "diverged", "command", "auth", "network", "internal")


class ProtocolError(ValueError):
    pass


def make_event(type_: str, **payload: Any) -> dict[str, Any]:
    """An event of a listed type with exactly the listed fields (ProtocolError otherwise)."""
    check_event(type_, payload)
    return {"type": type_, "t": round(time.time(), 3), **payload}


def check_event(type_: str, payload: dict[str, Any]) -> None:
    """ProtocolError unless ``payload`` has every required field of ``type_`` and no field EVENTS does not list."""
    spec = EVENTS.get(type_)
    if spec is None:
        raise ProtocolError(f"unknown event type {type_!r}")
    missing = [f for f in spec.required if f not in payload]
    unknown = sorted(set(payload) - spec.fields - {"type", "t"})
    if missing or unknown:
        raise ProtocolError(f"{type_} event: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"fields not in the protocol: {', '.join(unknown)}" if unknown else "") if part))


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
