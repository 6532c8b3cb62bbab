"""Small text formats for per-layer settings, so tables stay editable in a one-line form field.

``"down_proj=32, layers\\.0\\..*=8"``  module-name pattern -> number (LoRA rank/alpha patterns)
``"0-5=8, 6-23=16"``                 layer ranges -> number (QR-Adaptor's rank table)
``"0, 1, 22-23"``                    a set of layer indices (QR-Adaptor's bf16 layers)

Parsers raise ValueError with a message that quotes the bad part; YAML configs may also give
a mapping or a list, which is normalised to the same text.
"""

from __future__ import annotations

import re
from typing import Any


def _items(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]


def parse_pattern_map(text: str, kind: type = int) -> dict[str, Any]:
    """``"q_proj=8, down_proj=32"`` -> {"q_proj": 8, "down_proj": 32}; keys are regexes."""
    out: dict[str, Any] = {}
    for item in _items(text):
        key, sep, value = item.rpartition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{item!r}: write pattern=value, e.g. down_proj=32")
        try:
            re.compile(key)
        except re.error as e:
            raise ValueError(f"{key!r} is not a valid regular expression ({e})") from None
        try:
            number = kind(value.strip())
        except ValueError:
            raise ValueError(f"{item!r}: {value.strip()!r} is not a {'whole ' if kind is int else ''}number") from None
        if number <= 0:
            raise ValueError(f"{item!r}: the value must be > 0")
        out[key] = number
    return out


def parse_layer_set(text: str) -> list[int]:
    """``"0, 1, 22-23"`` -> [0, 1, 22, 23]."""
    layers: set[int] = set()
    for item in _items(text):
        layers.update(_layer_range(item))
    return sorted(layers)


def parse_layer_map(text: str) -> dict[int, int]:
    """``"0-5=8, 6=16"`` -> {0: 8, ..., 5: 8, 6: 16}; a later entry overrides an earlier one."""
    out: dict[int, int] = {}
    for item in _items(text):
        rng, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: write layers=rank, e.g. 0-5=8")
        try:
            rank = int(value.strip())
        except ValueError:
            raise ValueError(f"{item!r}: {value.strip()!r} is not a whole number") from None
        if rank < 0:
            raise ValueError(f"{item!r}: a rank cannot be negative (0 = no adapter on that layer)")
        for layer in _layer_range(rng.strip()):
            out[layer] = rank
    return out


def _layer_range(item: str) -> range:
    m = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", item.strip())
    if not m:
        raise ValueError(f"{item!r}: write a layer number or a range such as 4-7")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if hi < lo:
        raise ValueError(f"{item!r}: the range runs backwards")
    return range(lo, hi + 1)


def normalise(value: Any) -> Any:
    """Turn a YAML mapping or list into the text form; leave text alone."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value
