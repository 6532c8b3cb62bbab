"""Generating text: one streamed answer (chat) and greedy answers for many prompts at once (evaluation).

Streaming decodes incrementally the way text-generation servers do: the text of the tokens since
a moving offset is decoded again with each new token and only what it adds is sent, and nothing is
sent while the text ends in an incomplete character (a byte-level BPE token can hold half of one).
An answer ends at EOS, at the template's end-of-turn marker (as a token id when it is one token,
else as text), at ``max_new_tokens``, or when the caller's stop flag is set (checked before every
token by a StoppingCriteria, so Stop takes effect within one token).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

REPLACEMENT = "\ufffd"


@dataclass
class Reply:
    text: str
    tokens: int
    first_token_s: float  # from the call to the first new token (prompt processing included)
    tokens_per_s: float  # new tokens after the first, per second after the first (decoding speed)
    seconds: float
    stop_reason: str  # "end" (EOS / end of turn), "length", "stopped"


class TextStream:
    """A transformers streamer (``put`` / ``end``) that hands ``on_text`` each new piece of the answer."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None], stop_texts: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.stop_texts = tuple(t for t in stop_texts if t)
        self.ids: list[int] = []
        self.text = ""  # handed out so far
        self.hit_stop_text = False
        self.first_token_at: Optional[float] = None
        self._prompt_seen = False
        self._prefix = 0  # ids before this index are settled text
        self._read = 0
        self._held = ""  # text that may be the start of a stop marker

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() passes the prompt first
            self._prompt_seen = True
            return
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.ids.extend(int(i) for i in value.reshape(-1).tolist())
        self._emit(self._decode_new())

    def end(self) -> None:
        tail = self._decode(self.ids[self._prefix:])[len(self._decode(self.ids[self._prefix:self._read])):]
        self._read = self._prefix = len(self.ids)
        self._emit(tail, final=True)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True) if ids else ""

    def _decode_new(self) -> str:
        before = self._decode(self.ids[self._prefix:self._read])
        now = self._decode(self.ids[self._prefix:])
        if len(now) <= len(before) or now.endswith(REPLACEMENT):
            return ""  # nothing new yet, or half a character: wait for the rest
        self._prefix, self._read = self._read, len(self.ids)
        return now[len(before):]

    def _emit(self, piece: str, final: bool = False) -> None:
        if self.hit_stop_text:
            return
        pending = self._held + piece
        self._held = ""
        for stop in self.stop_texts:
            at = pending.find(stop)
            if at >= 0:
                pending = pending[:at]
                self.hit_stop_text = True
        if not self.hit_stop_text and not final:
            keep = _partial_marker(pending, self.stop_texts)
            if keep:
                pending, self._held = pending[:-keep], pending[-keep:]
        if pending:
            self.text += pending
            self.on_text(pending)


def _partial_marker(text: str, markers: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that begins one of ``markers``."""
    best = 0
    for marker in markers:
        for n in range(min(len(marker) - 1, len(text)), best, -1):
            if text.endswith(marker[:n]):
                best = n
                break
    return best


def stop_token_ids(tokenizer: Any, stop_texts: Sequence[str], model: Any = None) -> list[int]:
    """EOS ids (the tokenizer's and the model's generation config's) and the stop markers that are one token."""
    ids: list[int] = []
    for value in (getattr(tokenizer, "eos_token_id", None),
                  getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        ids.extend(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
    for text in stop_texts:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1:
            ids.append(encoded[0])
    return list(dict.fromkeys(int(i) for i in ids))


def _interrupt(check: Callable[[], bool]) -> Any:
    import torch
    from transformers import StoppingCriteria

    class Interrupt(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), bool(check()), dtype=torch.bool, device=input_ids.device)

    return Interrupt()


def generation_config(sampling: Any, stop_ids: list[int], pad_id: int) -> Any:
    from transformers import GenerationConfig

    kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, eos_token_id=stop_ids or None,
                                  pad_token_id=pad_id, repetition_penalty=sampling.repetition_penalty)
    if sampling.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                      top_k=sampling.top_k or None)
    return GenerationConfig(**kwargs)


def stream_reply(model: Any, tokenizer: Any, prompt_ids: list[int], sampling: Any, on_text: Callable[[str], None],
                 stop: threading.Event, stop_texts: Sequence[str] = (), device: str = "cpu") -> Reply:
    """One answer, streamed through ``on_text``; the random state is seeded with ``sampling.seed`` first."""
    import torch
    from transformers import StoppingCriteriaList

    stop_ids = stop_token_ids(tokenizer, stop_texts, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids[0] if stop_ids else 0)
    stream = TextStream(tokenizer, on_text, stop_texts)
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    torch.manual_seed(sampling.seed)  # every device's generator: both sides start from the same state
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                       generation_config=generation_config(sampling, stop_ids, pad_id), streamer=stream,
                       stopping_criteria=StoppingCriteriaList([_interrupt(lambda: stop.is_set() or
                                                                          stream.hit_stop_text)]))
    end = time.perf_counter()
    tokens = len(stream.ids)
    first = (stream.first_token_at or end) - start
    after_first = end - (stream.first_token_at or end)
    if stop.is_set():
        reason = "stopped"
    elif stream.hit_stop_text or (stream.ids and stream.ids[-1] in stop_ids):
        reason = "end"
    else:
        reason = "length" if tokens >= sampling.max_new_tokens else "end"
    return Reply(text=stream.text, tokens=tokens, first_token_s=round(first, 4),
                 tokens_per_s=round((tokens - 1) / after_first, 1) if tokens > 1 and after_first > 0 else 0.0,
                 seconds=round(end - start, 4), stop_reason=reason)


def greedy_batch(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int,
                 stop_texts: Sequence[str] = (), device: str = "cpu") -> list[tuple[str, int]]:
    """Greedy answers to several prompts at once (left-padded): (text up to the first stop marker, new tokens)."""
    import torch

    stop_ids = stop_token_ids(tokenizer, stop_texts, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids[0] if stop_ids else 0)
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, longest - len(prompt):] = 1
    config = generation_config(_Greedy(max_new_tokens), stop_ids, pad_id)
    with torch.inference_mode():
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config)
    answers = []
    for row in out[:, longest:].tolist():
        new = []
        for token in row:
            if token in stop_ids:
                break
            new.append(token)
        answers.append((cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), stop_texts), len(new)))
    return answers


@dataclass
class _Greedy:
    max_new_tokens: int
    greedy: bool = True
    repetition_penalty: float = 1.0


def cut_at_stop(text: str, stop_texts: Sequence[str]) -> str:
    for stop in stop_texts:
        if stop and stop in text:
            text = text[:text.index(stop)]
    return text
