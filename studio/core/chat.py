"""The chat worker's side of the conversation: its stdin commands, sampling settings and base-model check.

``python -m studio --worker chat ...`` (studio/worker/chat.py) keeps a model loaded and reads one
JSON command per line on stdin, ``{"cmd": NAME, ...}``. ``COMMANDS`` lists each command's fields,
as ``studio.core.protocol.EVENTS`` lists the events it answers with; ``parse_command`` checks a
line and ``command_line`` writes one, so the GUI, the CLI and the worker agree on one format.
``Sampling`` is the generation settings form (pydantic: ranges, titles and help for the GUI).
``base_model_problem`` says, without torch, when a run's base model is no longer where it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SIDES = ("base", "tuned")  # the model without its training, and with it


@dataclass(frozen=True)
class CommandSpec:
    doc: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


COMMANDS: dict[str, CommandSpec] = {
    "generate": CommandSpec(
        "answer a conversation on each side in `sides` (default: every side the worker has), one after another "
        "with the same seed: token events stream, then one reply per side. messages: [{role, content}] ending with the "
        "user's turn, or {side: messages} when the sides' histories differ; system: a system prompt put first; "
        "sampling: Sampling fields; template: auto (the one the run trained with), chatml, alpaca, llama3 or a "
        "Jinja chat template",
        ("id", "messages"), ("sides", "system", "sampling", "template")),
    "stop": CommandSpec("stop generating: the request `id` (running or queued), else the running one", (), ("id",)),
    "set_adapter": CommandSpec("make a loaded adapter the tuned side (answered by `switched`)", ("name",)),
    "load_adapter": CommandSpec("load another adapter (a checkpoint, an exported adapter) over the same base and "
                                "make it the tuned side (answered by `switched`)", ("name", "path")),
    "quit": CommandSpec("finish: the worker emits done and exits 0 (end of stdin does the same)"),
}


class CommandError(ValueError):
    """A command line the worker cannot act on; the message says what is wrong."""


class Sampling(BaseModel):
    """How the next tokens are picked. Greedy ignores temperature, top-p and top-k."""

    model_config = ConfigDict(extra="forbid")

    greedy: bool = Field(True, title="Greedy", description="Always take the most likely token (reproducible).")
    temperature: float = Field(0.7, gt=0, le=5, title="Temperature",
                               description="Below 1 sharpens, above 1 flattens the next-token distribution.")
    top_p: float = Field(0.9, gt=0, le=1, title="Top-p",
                         description="Sample from the smallest set of tokens whose probabilities add up to this.")
    top_k: int = Field(50, ge=0, le=100_000, title="Top-k", description="Sample from the k likeliest tokens (0: all).")
    max_new_tokens: int = Field(256, ge=1, le=32_768, title="Max new tokens", description="Longest answer, in tokens.")
    repetition_penalty: float = Field(1.0, ge=0.5, le=3, title="Repetition penalty",
                                      description="Above 1 makes tokens already in the text less likely.")
    seed: int = Field(0, ge=0, le=2**32 - 1, title="Seed",
                      description="Both sides start sampling from this seed, so they differ only by the training.")


def parse_command(line: str) -> dict[str, Any]:
    """The command on one stdin line, checked against COMMANDS (CommandError otherwise).

    ``sampling`` comes back as a Sampling; ``sides`` None means every side the worker has
    (``conversation_for`` gives each side its messages).
    """
    try:
        command = json.loads(line)
    except json.JSONDecodeError as e:
        raise CommandError(f"not a JSON command ({e.msg}): {line.strip()[:80]!r}") from None
    if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
        raise CommandError('a command is a JSON object with "cmd", e.g. {"cmd": "quit"}')
    name = command["cmd"]
    spec = COMMANDS.get(name)
    if spec is None:
        raise CommandError(f"unknown command {name!r}; the commands are {', '.join(COMMANDS)}")
    fields = {k: v for k, v in command.items() if k != "cmd"}
    missing = [f for f in spec.required if f not in fields]
    unknown = sorted(set(fields) - set(spec.required) - set(spec.optional))
    if missing or unknown:
        raise CommandError(f"{name}: " + "; ".join(p for p in (
            f"missing {', '.join(missing)}" if missing else "",
            f"unknown field {', '.join(unknown)}" if unknown else "") if p))
    for key in ("id", "name", "path", "system", "template"):
        if key in fields and fields[key] is not None and not isinstance(fields[key], (str, int)):
            raise CommandError(f"{name}: {key} must be a string")
    if "id" in fields:
        fields["id"] = str(fields["id"])
    if name == "generate":
        fields.update(_generate_fields(fields))
    return {"cmd": name, **fields}


def _generate_fields(fields: dict[str, Any]) -> dict[str, Any]:
    sides = fields.get("sides")
    if isinstance(sides, str):
        sides = [sides]
    if sides is not None and (not isinstance(sides, list) or not sides or any(s not in SIDES for s in sides)
                              or len(set(sides)) < len(sides)):
        raise CommandError(f"generate: sides must be a list of {' and '.join(SIDES)}")
    messages = fields["messages"]
    if isinstance(messages, dict):
        unknown = sorted(set(messages) - set(SIDES), key=str)
        if unknown:
            raise CommandError(f"generate: messages has no side {unknown[0]!r} (the sides are {' and '.join(SIDES)})")
        missing = [s for s in (sides or []) if s not in messages]
        if missing:
            raise CommandError(f"generate: messages has no conversation for {missing[0]}")
        convs = messages.items()
    else:
        convs = [(s, messages) for s in (sides or SIDES[:1])]
    for side, conv in convs:
        if not isinstance(conv, list) or not conv or not all(
                isinstance(t, dict) and isinstance(t.get("role"), str) and isinstance(t.get("content"), str)
                for t in conv):
            raise CommandError(f"generate: messages for {side} must be a non-empty list of {{role, content}}")
    try:
        sampling = Sampling(**(fields.get("sampling") or {}))
    except (ValidationError, TypeError) as e:
        from studio.core.config import describe_validation_error

        detail = describe_validation_error(e) if isinstance(e, ValidationError) else str(e)
        raise CommandError(f"generate: sampling.{detail}") from None
    return {"sides": sides, "messages": messages, "sampling": sampling}


def conversation_for(command: dict[str, Any], side: str) -> list[dict[str, str]]:
    """The conversation a parsed generate command gives ``side`` (one for all, or one per side)."""
    messages = command["messages"]
    if isinstance(messages, dict):
        if side not in messages:
            raise CommandError(f"generate: messages has no conversation for {side}")
        return messages[side]
    return messages


def command_line(cmd: str, /, **fields: Any) -> str:
    """One command as the stdin line the worker reads (with the newline); checked like parse_command."""
    if isinstance(fields.get("sampling"), Sampling):
        fields["sampling"] = fields["sampling"].model_dump()
    line = json.dumps({"cmd": cmd, **fields}, ensure_ascii=False)
    parse_command(line)
    return line + "\n"


def with_system(conv: list[dict[str, str]], system: Optional[str]) -> list[dict[str, str]]:
    """The conversation with ``system`` as its first turn (replacing one it had); unchanged without one."""
    if not system:
        return list(conv)
    rest = conv[1:] if conv and conv[0].get("role") == "system" else conv
    return [{"role": "system", "content": system}, *rest]


def base_model_problem(cfg: Any) -> tuple[str, str]:
    """(where the run's base model was looked for, what is wrong) -- ("", "") when it is there.

    Only local folders can be checked without loading: a hub id is fetched or read from the cache
    by the worker, which says so itself when that fails.
    """
    if cfg.model.source != "local":
        return "", ""
    folder = Path(cfg.model.path.strip()).expanduser()
    if not folder.is_dir():
        return str(folder), (f"The base model is not at {folder} any more (moved or deleted). Locate the folder "
                             "that holds its config.json (studio chat/eval --base-path DIR).")
    if not (folder / "config.json").is_file():
        return str(folder), (f"{folder} has no config.json, so it is not the base model's folder. Locate the folder "
                             "that holds its config.json (studio chat/eval --base-path DIR).")
    return "", ""


def with_base_path(cfg: Any, path: str | Path) -> Any:
    """The run config with its base model read from another local folder (a moved model)."""
    folder = str(Path(path).expanduser().resolve())
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"source": "local", "path": folder})})
