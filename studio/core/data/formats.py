"""Recognise a dataset's shape (alpaca, messages, ...) and convert rows to conversations.

Detection counts, over a sample, the rows that carry each shape's fields and reports the count as
evidence ("142 of the first 200 rows have instruction/output: alpaca"). When no shape fits, common
column names (question/answer, prompt/response, ...) are mapped automatically and the mapping is
shown; the user can always force a format and map columns by hand (DataSpec.format/column_map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

from studio.core.config import FORMAT_TITLES  # the shapes' names, beside the DataSpec.format they label
from studio.core.data.errors import DataError, Problem

ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system", "chatgpt": "assistant"}

FORMATS = ("alpaca", "sharegpt", "messages", "prompt_completion", "text")

# Fields each format reads; the first group is required.
FORMAT_FIELDS = {
    "alpaca": (("instruction", "output"), ("input", "system")),
    "sharegpt": (("conversations",), ("system",)),
    "messages": (("messages",), ("system",)),
    "prompt_completion": (("prompt", "completion"), ()),
    "text": (("text",), ()),
}

# Column names people use for the canonical fields, tried when no shape matches as-is.
_SYNONYMS = [
    ("alpaca", {"instruction": ("instruction", "question", "query", "prompt", "input", "problem"),
                "output": ("output", "answer", "response", "completion", "target", "solution")}),
    ("text", {"text": ("text", "content", "document", "body", "article", "passage")}),
    ("messages", {"messages": ("messages", "conversation", "chat", "dialogue", "turns")}),
]


@dataclass
class Detection:
    format: str  # "alpaca" | "messages" | "sharegpt" | "prompt_completion" | "text"
    evidence: str
    column_map: dict[str, str] = field(default_factory=dict)  # user's column -> canonical field
    matched: int = 0
    sampled: int = 0

    @property
    def title(self) -> str:
        return FORMAT_TITLES.get(self.format, self.format)


def _mapped(row: dict[str, Any], column_map: dict[str, str]) -> dict[str, Any]:
    if not column_map:
        return row
    # A mapped column is renamed, not copied: input -> instruction must not leave `input` behind.
    out = {k: v for k, v in row.items() if k not in column_map or column_map[k] == k}
    for src, dst in column_map.items():
        if src in row and dst:
            out[dst] = row[src]
    return out


def _has(row: dict[str, Any], fmt: str) -> bool:
    if fmt == "messages":
        return isinstance(row.get("messages"), list)
    if fmt == "sharegpt":
        return isinstance(row.get("conversations"), list)
    if fmt == "text":
        return isinstance(row.get("text"), str)
    return all(row.get(f) is not None for f in FORMAT_FIELDS[fmt][0])


def _fields_label(fmt: str) -> str:
    return "/".join(FORMAT_FIELDS[fmt][0])


def detect_format(rows: list[dict[str, Any]], column_map: Optional[dict[str, str]] = None,
                  forced: str = "auto", source: str = "") -> Detection:
    """The rows' shape with evidence. Raises DataError when nothing fits, listing the columns.

    ``source`` (the file or folder) starts every error message, so the user knows which data is meant.
    """
    where = f"{source}: " if source else ""
    column_map = dict(column_map or {})
    if not rows:
        raise DataError(f"{where}the dataset has no rows.")
    sample = [_mapped(r, column_map) for r in rows[:1000] if isinstance(r, dict)]
    n = len(sample)
    if forced != "auto":
        if forced not in FORMATS:
            raise DataError(f"{where}unknown format {forced!r}; use one of {', '.join(FORMATS)}.")
        hits = sum(_has(r, forced) for r in sample)
        how = f"set by hand: {forced}"
        if hits < n:
            how += f" ({hits:,} of {n:,} sampled rows have {_fields_label(forced)}"
            how += "; map your columns so the rest do)" if hits else "; map your columns to these fields)"
        return Detection(forced, how, column_map, hits, n)
    counts = {fmt: sum(_has(r, fmt) for r in sample) for fmt in FORMATS}
    best = max(FORMATS, key=lambda k: counts[k])  # ties go to the more structured shape (order of FORMATS)
    if counts[best] == 0:
        guessed = _guess_mapping(sample, column_map)
        if guessed is not None:
            fmt, extra = guessed
            full_map = {**column_map, **extra}
            hits = sum(_has(_mapped(r, full_map), fmt) for r in sample)
            pairs = ", ".join(f"{a} -> {b}" for a, b in extra.items())
            return Detection(fmt, f"{hits:,} of {_of(n, len(rows))} rows have {', '.join(extra)} "
                                  f"(mapped {pairs}): {fmt}", full_map, hits, n)
        cols = sorted({str(k) for r in sample for k in r})
        raise DataError(
            f"{where}could not recognise the rows' shape: columns are " + (", ".join(cols[:12]) or "(none)")
            + ". Map your columns by hand (e.g. question -> instruction, answer -> output), or pick a format.")
    return Detection(best, f"{counts[best]:,} of {_of(n, len(rows))} rows have {_fields_label(best)}: {best}",
                     column_map, counts[best], n)


def _of(n: int, total: int) -> str:
    return f"{n:,}" if n >= total else f"the first {n:,}"


def _guess_mapping(sample: list[dict[str, Any]], column_map: dict[str, str]) -> Optional[tuple[str, dict[str, str]]]:
    columns: dict[str, str] = {}
    for r in sample[:50]:
        for k in r:
            columns.setdefault(str(k).strip().lower(), k)
    for fmt, wanted in _SYNONYMS:
        extra: dict[str, str] = {}
        for canon, names in wanted.items():
            hit = next((columns[n] for n in names if n in columns and columns[n] not in extra), None)
            if hit is None:
                break
            if hit != canon:
                extra[hit] = canon
        else:
            if extra and sum(_has(_mapped(r, {**column_map, **extra}), fmt) for r in sample) > 0:
                return fmt, extra
    return None


def to_conversations(rows: list[dict[str, Any]], detection: Detection,
                     problems: Optional[list[Problem]] = None, file: str = "",
                     locations: Optional[list[tuple[str, int]]] = None) -> list[list[dict[str, str]]]:
    """Canonical conversations; rows that don't fit are skipped and reported in ``problems``."""
    out = []
    for i, raw in enumerate(rows, start=1):
        try:
            conv = convert_row(raw, detection)
        except ValueError as e:
            if problems is not None:
                where = locations[i - 1] if locations and i - 1 < len(locations) else (file, i)
                problems.append(Problem(f"{e}; row skipped", where[0], where[1]))
            continue
        out.append(conv)
    return out


def convert_row(raw: Any, detection: Detection) -> list[dict[str, str]]:
    """One row as a conversation. ValueError (with a fix in the message) when it doesn't fit."""
    if not isinstance(raw, dict):
        raise ValueError(f"row is {type(raw).__name__}, not an object")
    try:
        return _convert(_mapped(raw, detection.column_map), detection.format)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"unexpected row shape ({type(e).__name__}: {e})") from None


def _text(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"`{name}` is missing. Map a column to `{name}` or fill it in")
    if not isinstance(value, str):
        value = _scalar_text(value, name)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"`{name}` holds an invalid character (a lone surrogate such as \\ud800, from a broken "
                             "escape); fix or remove it") from None
    return value


def _scalar_text(value: Any, name: str) -> str:
    """A number or true/false as text; anything else that isn't text refused, never turned into its repr."""
    odd = _not_finite(value)
    if odd:
        raise ValueError(f"`{name}` is {odd}, not text. Fill it in or drop the row")
    if isinstance(value, (bool, int, float, Decimal)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"`{name}` holds binary data ({len(value):,} bytes), not text. Decode that column to text "
                         "(or map a text column to it)")
    if isinstance(value, (dict, list, tuple)):
        raise ValueError(f"`{name}` is a {type(value).__name__}, not text")
    raise ValueError(f"`{name}` holds a {type(value).__name__} value, not text. Convert that column to text")


def _not_finite(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN (a missing value?)" if math.isnan(value) else "an infinite number"
    if isinstance(value, Decimal) and not value.is_finite():
        return "NaN (a missing value?)" if value.is_nan() else "an infinite number"
    return ""


def _convert(row: dict[str, Any], fmt: str) -> list[dict[str, str]]:
    if fmt == "alpaca":
        instruction = _text(row.get("instruction"), "instruction")
        extra = row.get("input")
        extra = "" if extra is None else _text(extra, "input")
        output = _text(row.get("output"), "output")
        if not instruction.strip() and not extra.strip():
            raise ValueError("`instruction` is empty")
        if not output.strip():
            raise ValueError("`output` is empty")
        prompt = f"{instruction}\n\n{extra}" if extra.strip() and instruction.strip() else (instruction or extra)
        conv = []
        if row.get("system"):
            conv.append({"role": "system", "content": _text(row["system"], "system")})
        return conv + [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    if fmt == "prompt_completion":
        prompt, completion = _text(row.get("prompt"), "prompt"), _text(row.get("completion"), "completion")
        if not completion.strip():
            raise ValueError("`completion` is empty")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    if fmt in ("messages", "sharegpt"):
        key = "messages" if fmt == "messages" else "conversations"
        turns = row.get(key)
        if turns is None:
            raise ValueError(f"`{key}` is missing")
        if not isinstance(turns, list):
            raise ValueError(f"`{key}` is a {type(turns).__name__}, not a list of turns")
        if not turns:
            raise ValueError("empty conversation (no turns)")
        conv = []
        if row.get("system"):
            conv.append({"role": "system", "content": _text(row["system"], "system")})
        for n, t in enumerate(turns, start=1):
            if not isinstance(t, dict):
                raise ValueError(f"turn {n} is not an object with role/content")
            role_raw = t.get("role", t.get("from"))
            content = t.get("content", t.get("value"))
            role = ROLE_ALIASES.get(str(role_raw).strip().lower()) if role_raw is not None else None
            if role is None:
                raise ValueError(f"turn {n} has unknown role {role_raw!r} (use system, user or assistant)")
            conv.append({"role": role, "content": _text(content, f"turn {n} content")})
        check_alternation(conv)
        return conv
    if fmt == "text":
        text = _text(row.get("text"), "text")
        if not text.strip():
            raise ValueError("`text` is empty")
        return [{"role": "text", "content": text}]
    raise ValueError(f"unknown format {fmt!r}")


def check_alternation(conv: list[dict[str, str]]) -> None:
    """System first (optional), then user and assistant taking turns, with at least one answer."""
    roles = [t["role"] for t in conv]
    body = roles[1:] if roles and roles[0] == "system" else roles
    offset = len(roles) - len(body)
    if "system" in body:
        raise ValueError(f"turn {body.index('system') + offset + 1} is a system turn after the start; "
                         "put the system message first")
    if not body:
        raise ValueError("empty conversation (only a system message)")
    if body[0] != "user":
        raise ValueError("conversation starts with an assistant turn; it must start with a user turn")
    for i in range(1, len(body)):
        if body[i] == body[i - 1]:
            raise ValueError(f"turns {i + offset} and {i + offset + 1} are both from {body[i]}; roles must alternate "
                             "user/assistant. Merge those turns or fix their roles")
    if "assistant" not in body:
        raise ValueError("conversation has no assistant turn, so nothing to learn from")
