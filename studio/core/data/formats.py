"""Recognise a dataset's shape (alpaca, messages, ...) and convert rows to conversations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from studio.core.data.errors import DataError, Problem

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}


@dataclass
class Detection:
    format: str  # "alpaca" | "messages" | "sharegpt" | "prompt_completion" | "text"
    evidence: str
    column_map: dict[str, str] = field(default_factory=dict)  # user's column -> canonical field


def _mapped(row: dict[str, Any], column_map: dict[str, str]) -> dict[str, Any]:
    if not column_map:
        return row
    out = dict(row)
    for src, dst in column_map.items():
        if src in row:
            out[dst] = row[src]
    return out


def detect_format(rows: list[dict[str, Any]], column_map: Optional[dict[str, str]] = None,
                  forced: str = "auto") -> Detection:
    column_map = column_map or {}
    if not rows:
        raise DataError("the dataset has no rows.")
    sample = [_mapped(r, column_map) for r in rows[:200]]
    n = len(sample)

    def count(pred) -> int:
        return sum(1 for r in sample if pred(r))

    candidates = {
        "messages": count(lambda r: isinstance(r.get("messages"), list)),
        "sharegpt": count(lambda r: isinstance(r.get("conversations"), list)),
        "alpaca": count(lambda r: "instruction" in r and "output" in r),
        "prompt_completion": count(lambda r: "prompt" in r and "completion" in r),
        "text": count(lambda r: isinstance(r.get("text"), str)),
    }
    evidence_fields = {"messages": "`messages`", "sharegpt": "`conversations`",
                       "alpaca": "`instruction`/`output`", "prompt_completion": "`prompt`/`completion`",
                       "text": "`text`"}
    if forced != "auto":
        return Detection(forced, f"format set by hand: {forced}", column_map)
    best = max(candidates, key=lambda k: candidates[k])
    if candidates[best] == 0:
        cols = sorted({k for r in sample for k in r})
        raise DataError(
            "could not recognise the rows' shape: columns are " + ", ".join(cols[:12])
            + ". Map your columns by hand (e.g. question -> instruction, answer -> output).")
    return Detection(best, f"{candidates[best]:,} of the first {n:,} rows have {evidence_fields[best]}: {best}",
                     column_map)


def to_conversations(rows: list[dict[str, Any]], detection: Detection,
                     problems: Optional[list[Problem]] = None, file: str = "") -> list[list[dict[str, str]]]:
    """Canonical conversations; rows that don't fit are skipped and reported in ``problems``."""
    out = []
    for i, raw in enumerate(rows, start=1):
        row = _mapped(raw, detection.column_map)
        try:
            conv = _convert(row, detection.format)
        except (KeyError, TypeError, ValueError) as e:
            if problems is not None:
                problems.append(Problem(f"{e}; row skipped", file, i))
            continue
        out.append(conv)
    return out


def _text(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"`{name}` is empty")
    if not isinstance(value, str):
        value = str(value)
    return value


def _convert(row: dict[str, Any], fmt: str) -> list[dict[str, str]]:
    if fmt == "alpaca":
        instruction = _text(row.get("instruction"), "instruction")
        extra = row.get("input") or ""
        output = _text(row.get("output"), "output")
        if not instruction.strip() or not output.strip():
            raise ValueError("`instruction` or `output` is empty")
        prompt = f"{instruction}\n\n{extra}" if str(extra).strip() else instruction
        conv = []
        if row.get("system"):
            conv.append({"role": "system", "content": str(row["system"])})
        return conv + [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    if fmt == "prompt_completion":
        prompt, completion = _text(row.get("prompt"), "prompt"), _text(row.get("completion"), "completion")
        if not completion.strip():
            raise ValueError("`completion` is empty")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if fmt in ("messages", "sharegpt"):
        turns = row.get("messages" if fmt == "messages" else "conversations")
        if not isinstance(turns, list) or not turns:
            raise ValueError("empty conversation")
        conv = []
        if fmt == "messages" and row.get("system"):
            conv.append({"role": "system", "content": str(row["system"])})
        for t in turns:
            if not isinstance(t, dict):
                raise ValueError("a turn is not an object")
            role = t.get("role", t.get("from"))
            content = t.get("content", t.get("value"))
            role = ROLE_ALIASES.get(str(role).lower()) if role is not None else None
            if role is None:
                raise ValueError(f"unknown role {t.get('role', t.get('from'))!r}")
            conv.append({"role": role, "content": _text(content, "content")})
        if not any(t["role"] == "assistant" for t in conv):
            raise ValueError("conversation has no assistant turn")
        return conv
    if fmt == "text":
        return [{"role": "text", "content": _text(row.get("text"), "text")}]
    raise ValueError(f"unknown format {fmt!r}")
