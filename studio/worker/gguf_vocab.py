"""The run's tokenizer as GGUF metadata, written so that llama.cpp tokenizes exactly like it.

The source is the tokenizer the run trained with (its tokenizer.json, as transformers' fast
tokenizer holds it). Byte-level BPE becomes llama.cpp's "gpt2" vocabulary: every token id in
order, merges in rank order, the pre-tokenizer by name (studio.core.gguf_support). A
SentencePiece-style BPE with byte fallback becomes llama.cpp's "llama" vocabulary, whose merge
order is a score per token: here minus the rank of the first merge that makes the token, which
is the order transformers applies. Added tokens are CONTROL when special, USER_DEFINED otherwise;
ids past the tokenizer's vocabulary (embedding rows kept for padding) are UNUSED placeholders.
BOS/EOS behaviour is measured on the tokenizer itself, not guessed from its config, and the
run's chat template and end-of-turn token go in too. The export's verification then checks
llama.cpp's token ids against transformers' on real prompts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from studio.core.gguf_support import TokenizerPlan

_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


@dataclass
class Vocab:
    model: str
    pre: str
    tokens: list[str]
    types: list[int]
    scores: Optional[list[float]]
    merges: list[str]
    special: dict[str, int] = field(default_factory=dict)  # bos, eos, unk, pad, eot -> id
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: Optional[bool] = None


def build_vocab(tokenizer: Any, vocab_size: int, plan: TokenizerPlan, eot_token: str = "") -> Vocab:
    import gguf

    tj = json.loads(tokenizer.backend_tokenizer.to_str())
    model = tj["model"]
    base = model["vocab"]
    added = {int(a["id"]): a for a in tj.get("added_tokens", [])}
    by_id = {i: t for t, i in base.items()}
    size = max(vocab_size, max(list(by_id) + list(added) + [-1]) + 1)
    merges = [_merge_text(m) for m in model.get("merges", [])]
    scores: Optional[list[float]] = None
    if plan.model == "llama":
        rank: dict[str, int] = {}
        for r, m in enumerate(merges):
            a, b = m.split(" ", 1)
            rank.setdefault(a + b, r)
        scores = []
    tokens: list[str] = []
    types: list[int] = []
    unk = model.get("unk_token")
    for i in range(size):
        if i in added:
            a = added[i]
            text = a["content"]
            kind = gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED
            if plan.model == "llama" and text == unk:
                kind = gguf.TokenType.UNKNOWN
        elif i in by_id:
            text = by_id[i]
            kind = gguf.TokenType.NORMAL
            if plan.model == "llama" and _BYTE_TOKEN.fullmatch(text):
                kind = gguf.TokenType.BYTE
            elif text == unk:
                kind = gguf.TokenType.UNKNOWN if plan.model == "llama" else gguf.TokenType.CONTROL
        else:
            text, kind = f"[PAD{i}]", gguf.TokenType.UNUSED
        tokens.append(text)
        types.append(int(kind))
        if scores is not None:
            scores.append(-float(rank[text]) if text in rank else (-1e9 if kind != gguf.TokenType.NORMAL else 0.0))
    special = {}
    for key in ("bos", "eos", "unk", "pad"):
        tid = getattr(tokenizer, f"{key}_token_id", None)
        if isinstance(tid, int) and 0 <= tid < size:
            special[key] = tid
    eot = tokenizer.convert_tokens_to_ids(eot_token) if eot_token else None
    if isinstance(eot, int) and eot != special.get("eos") and 0 <= eot < size and eot != tokenizer.unk_token_id:
        special["eot"] = eot
    add_bos, add_eos = adds_specials(tokenizer)
    return Vocab(plan.model, plan.pre, tokens, types, scores, merges if plan.model == "gpt2" else [], special,
                 add_bos, add_eos, plan.add_space_prefix if plan.model == "llama" else None)


def _merge_text(m: Any) -> str:
    """A merge as llama.cpp reads it: "a b", with spaces inside a piece spelled as U+0120-style shifted spaces."""
    if isinstance(m, str):
        return m
    return " ".join("".join(chr(ord(ch) + 256) if ch == " " else ch for ch in part) for part in m)


def adds_specials(tokenizer: Any) -> tuple[bool, bool]:
    """Does encoding put BOS first / EOS last by itself? Measured, since configs and post-processors disagree."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    add_bos = bos is not None and full[:1] == [bos] and plain[:1] != [bos]
    add_eos = eos is not None and full[-1:] == [eos] and plain[-1:] != [eos]
    return add_bos, add_eos


def write_vocab(writer: Any, vocab: Vocab, chat_template: str) -> None:
    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    for key, tid in vocab.special.items():
        getattr(writer, f"add_{key}_token_id")(tid)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    if chat_template:
        writer.add_chat_template(chat_template)
