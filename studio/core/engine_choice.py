"""The engine's decisions as typed values: what it chose, why, and which setting overrides it.

The worker records every automatic decision (checkpointing, compile, loss, batching, ...) as a
``Choice`` under a key; they travel in the plan event and ``RUN_DIR/engine.json`` as
``{"value": "off", "reason": "auto: lengths are even", "setting": "training.group_by_length"}``,
and the GUI, the CLI and calibration read the fields, never prose. Runs written before choices
were typed hold ``"value (reason)"`` strings; ``Choice.from_json`` reads those too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# The RunConfig field that overrides each choice (dotted path); a key not listed has no override.
SETTINGS = {
    "device": "training.device",
    "precision": "training.precision",
    "attention": "model.attn_implementation",
    "compile": "training.compile",
    "adapter_compute": "training.adapter_compute",
    "gradient_checkpointing": "training.gradient_checkpointing",
    "checkpoint_offload": "training.offload_checkpoints",
    "loss": "training.loss_impl",
    "group_by_length": "training.group_by_length",
    "memory_limit": "training.memory_limit_gb",
}

# Known keys in reading order: where and how it runs, then memory and the data path; minor ones last.
TITLES = {
    "device": "Device",
    "precision": "Precision",
    "master_weights": "Master weights",
    "weights": "Weights file",
    "attention": "Attention",
    "attention_backend": "Attention kernel",
    "compile": "Compile",
    "adapter_compute": "Adapter compute",
    "gradient_checkpointing": "Gradient checkpointing",
    "checkpoint_offload": "Checkpoint offload",
    "allocator": "Allocator",
    "memory_limit": "Memory limit",
    "loss": "Loss",
    "loss_scaling": "Loss scaling",
    "batching": "Batching",
    "group_by_length": "Length grouping",
    "kernels": "Fused kernels",
    "cpu_threads": "CPU threads",
}


def title_of(key: str) -> str:
    return TITLES.get(key) or key.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Choice:
    """One decision: ``value`` ("on", "bf16", "chunked", ...), why, and the setting that overrides it."""

    value: str
    reason: str = ""
    setting: str = ""  # dotted RunConfig path; filled in from SETTINGS when recorded under a key

    @property
    def on(self) -> bool:
        """For on/off choices: is it on?"""
        return self.value.split()[0].rstrip(":").lower() in ("on", "true", "yes") if self.value else False

    @property
    def automatic(self) -> bool:
        """Decided by the engine ('auto' or a preset), not set in the config."""
        return not self.reason.startswith("set in the config")

    def text(self) -> str:
        """'off (auto: lengths are even)': one line for logs and terminals."""
        return f"{self.value} ({self.reason})" if self.reason else self.value

    def for_key(self, key: str) -> "Choice":
        return self if self.setting else Choice(self.value, self.reason, SETTINGS.get(key, ""))

    def to_json(self) -> dict[str, str]:
        out = {"value": self.value, "reason": self.reason}
        if self.setting:
            out["setting"] = self.setting
        return out

    @classmethod
    def from_json(cls, key: str, raw: Any) -> "Choice":
        """A recorded choice: the typed form, or the prose of runs recorded before choices were typed."""
        if isinstance(raw, Mapping):
            return cls(str(raw.get("value", "")), str(raw.get("reason", "")),
                       str(raw.get("setting") or SETTINGS.get(key, "")))
        value, reason = _split_legacy(str(raw))
        return cls(value, reason, SETTINGS.get(key, ""))


SET_ON = Choice("on", "set in the config")
SET_OFF = Choice("off", "set in the config")


def choices_from_json(raw: Any) -> dict[str, Choice]:
    """The ``choices`` of a plan event or engine.json, typed (an unreadable record gives none)."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): Choice.from_json(str(k), v) for k, v in raw.items()}


def _split_legacy(text: str) -> tuple[str, str]:
    """``"off (auto: lengths are even)"`` -> ``("off", "auto: lengths are even")``; ``"on: Liger kernels"``
    -> ``("on", "Liger kernels")``; no reason -> ``(text, "")``. Older runs only."""
    text = text.strip()
    paren, colon = text.find(" ("), text.find(": ")
    if 0 < colon and (paren < 0 or colon < paren) and len(text[:colon].split()) <= 3:
        return text[:colon], text[colon + 2:]
    if paren <= 0:
        return text, ""
    reason = text[paren + 2:]
    if reason.endswith(")") and reason.count(")") > reason.count("("):  # the bracket the value opened
        reason = reason[:-1]
    return text[:paren], reason
