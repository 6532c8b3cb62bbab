"""The Chat page's words for what the worker loaded (its ``ready`` event); no Qt."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from studio.core.chat_sources import ChatSource

TEMPLATE_TITLES = {"tokenizer": "the model's own", "custom": "the run's custom", "chatml": "ChatML",
                   "alpaca": "Alpaca", "llama3": "Llama 3", "text": "plain text"}
MODE_NOTES = {"adapter": "the same model with the training switched off", "swap": "the same model with the base's "
              "values of the trained tensors swapped back in", "plain": "the model as it is"}


def describe_ready(event: dict, source: Optional[ChatSource]) -> str:
    """The status line once loaded: what, which weights, where, how precise, how base vs tuned is made, how long."""
    what = source.title() if source is not None else Path(str(event.get("model", ""))).name
    if event.get("adapter"):
        what += f" · {method_title(event.get('method'))}{event['adapter']} weights"
    where = str(event.get("device", "?")).upper() if event.get("device") == "cpu" else str(event.get("device", "?"))
    precision = str(event.get("quantized") or event.get("precision") or "")
    parts = [what, f"{where}{', ' + precision if precision else ''}"]
    mode = str(event.get("mode") or "")
    if mode in ("adapter", "swap"):
        parts.append("base = " + MODE_NOTES[mode])
    parts.append(f"loaded in {float(event.get('load_s') or 0):.1f} s")
    return " · ".join(parts)


def method_title(name: Optional[str]) -> str:
    """"LoRA, " for "lora" (the method's own title), "" when unknown."""
    from studio.core.methods import method_class

    try:
        return f"{method_class(str(name)).info.title}, "
    except KeyError:
        return ""


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]

