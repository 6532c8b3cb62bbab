"""Turn a conversation into token ids and a per-token loss mask.

Rendering works segment by segment: each turn becomes a piece of text that either carries loss
(assistant turns, when training on completions) or not, so the mask is exact whatever the
tokenizer. The tokenizer is any object with ``encode(text, add_special_tokens=False)`` and
``eos_token``; torch is never needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100

# Fallback templates for base models without a chat template: (prefix, suffix) per role.
TEMPLATES = {
    "chatml": {"system": ("<|im_start|>system\n", "<|im_end|>\n"),
               "user": ("<|im_start|>user\n", "<|im_end|>\n"),
               "assistant": ("<|im_start|>assistant\n", "<|im_end|>\n")},
    "alpaca": {"system": ("", "\n\n"),
               "user": ("### Instruction:\n", "\n\n"),
               "assistant": ("### Response:\n", "\n\n")},
    "llama3": {"system": ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
               "user": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
               "assistant": ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")},
}


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where no loss
    truncated: bool = False

    @property
    def loss_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def segments(conv: list[dict[str, str]], template: str, train_on: str, eos: str) -> list[tuple[str, bool]]:
    """(text, carries_loss) pieces in order. Raw-text rows are one piece that always carries loss."""
    if conv and conv[0]["role"] == "text":
        return [(conv[0]["content"] + (eos or ""), True)]
    name = template if template in TEMPLATES else "chatml"
    tpl = TEMPLATES[name]
    out: list[tuple[str, bool]] = []
    for turn in conv:
        prefix, suffix = tpl[turn["role"]]
        if turn["role"] == "assistant":
            out.append((prefix, train_on == "all"))
            out.append((turn["content"] + suffix, True))
        else:
            out.append((prefix + turn["content"] + suffix, train_on == "all"))
    if eos and out:
        text, _ = out[-1]
        out[-1] = (text + eos, True if conv[-1]["role"] == "assistant" else train_on == "all")
    return out


def render_text(conv: list[dict[str, str]], template: str = "chatml", eos: str = "") -> str:
    return "".join(t for t, _ in segments(conv, template, "all", eos))


def render_example(conv: list[dict[str, str]], tokenizer: Any, *, template: str = "chatml",
                   train_on: str = "completion", add_eos: bool = True, max_len: int = 1024) -> Example:
    eos = (getattr(tokenizer, "eos_token", None) or "") if add_eos else ""
    ids: list[int] = []
    labels: list[int] = []
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and getattr(tokenizer, "add_bos_token", False):
        ids.append(bos)
        labels.append(IGNORE_INDEX)
    for text, carries in segments(conv, template, train_on, eos):
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids.extend(piece)
        labels.extend(piece if carries else [IGNORE_INDEX] * len(piece))
    truncated = len(ids) > max_len
    return Example(ids[:max_len], labels[:max_len], truncated)
