"""Turn a conversation into token ids and a per-token loss mask.

Rendering works segment by segment: the conversation becomes pieces of text that either carry
loss (assistant turns, when training on completions) or not, and each piece is tokenized on its
own, so the mask is exact whatever the tokenizer. With the model's own chat template (template
"auto"), the pieces come from rendering growing prefixes of the conversation and diffing them:
the text an assistant turn adds after the generation prompt is exactly the part that carries loss.

EOS is explicit: with ``add_eos`` the tokenizer's EOS token ends every example unless the text
already ends with it, and it carries loss when the example ends with an answer.

``render_prompt`` is the same rendering for generation (chat, evaluation): a conversation that ends
with the user's turn, plus the assistant's generation prompt, tokenized piece by piece exactly as
training tokenized the text before an answer. ``check_template`` validates a template a user
typed (a name, or a Jinja chat template for a base model that has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from studio.core.data.errors import DataError

IGNORE_INDEX = -100
TEMPLATE_NAMES = ("chatml", "alpaca", "llama3")

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
    # Packed examples: lengths of the original examples inside, so attention/positions can restart.
    seq_lens: Optional[list[int]] = None

    @property
    def loss_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def resolve_template(template: str, tokenizer: Any) -> str:
    """'auto' means the tokenizer's chat template when it has one, else ChatML."""
    if template == "auto":
        return "tokenizer" if getattr(tokenizer, "chat_template", None) else "chatml"
    return template if template in TEMPLATES else "chatml"


def segments(conv: list[dict[str, str]], template: str, train_on: str, eos: str,
             tokenizer: Any = None) -> list[tuple[str, bool]]:
    """(text, carries_loss) pieces in order, adjacent pieces with the same flag merged.

    ``template`` is a fallback name or "tokenizer" (use ``tokenizer.apply_chat_template``).
    Raw-text rows are one piece that always carries loss.
    """
    if conv and conv[0]["role"] == "text":
        text = conv[0]["content"]
        if eos and not text.endswith(eos):
            text += eos
        return [(text, True)]
    if template == "tokenizer":
        out = _template_segments(conv, tokenizer)
    else:
        tpl = TEMPLATES[template if template in TEMPLATES else "chatml"]
        out = []
        for turn in conv:
            prefix, suffix = tpl[turn["role"]]
            if turn["role"] == "assistant":
                out.append((prefix, False))
                out.append((turn["content"] + suffix, True))
            else:
                out.append((prefix + turn["content"] + suffix, False))
    if train_on == "all":
        out = [(t, True) for t, _ in out]
    if eos and out and not "".join(t for t, _ in out).rstrip().endswith(eos):
        ends_with_answer = conv[-1]["role"] == "assistant" or train_on == "all"
        out.append((eos, ends_with_answer))
    return _merge(out)


def _merge(pieces: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    merged: list[tuple[str, bool]] = []
    for text, loss in pieces:
        if not text:
            continue
        if merged and merged[-1][1] == loss:
            merged[-1] = (merged[-1][0] + text, loss)
        else:
            merged.append((text, loss))
    return merged


def _template_segments(conv: list[dict[str, str]], tokenizer: Any) -> list[tuple[str, bool]]:
    render = tokenizer.apply_chat_template
    full = render(conv, add_generation_prompt=False)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for i, turn in enumerate(conv):
        if turn["role"] != "assistant":
            continue
        before = render(conv[:i], add_generation_prompt=True)
        # The last turn's prefix is the whole conversation: one render saved per row.
        after = full if i == len(conv) - 1 else render(conv[: i + 1], add_generation_prompt=False)
        if not (after.startswith(before) and full.startswith(after) and len(before) >= pos):
            return _search_segments(conv, full)
        pieces.append((full[pos:len(before)], False))
        pieces.append((full[len(before):len(after)], True))
        pos = len(after)
    pieces.append((full[pos:], False))
    return pieces


def _search_segments(conv: list[dict[str, str]], full: str) -> list[tuple[str, bool]]:
    """For templates that re-render earlier turns (so prefixes don't line up): find each answer in the text."""
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for turn in conv:
        if turn["role"] != "assistant" or not turn["content"]:
            continue
        at = full.find(turn["content"], pos)
        if at < 0:
            raise DataError("the model's chat template changes the answers' text, so the loss mask can't be placed "
                            "exactly; choose a named template (chatml, alpaca, llama3) instead.")
        pieces.append((full[pos:at], False))
        pieces.append((turn["content"], True))
        pos = at + len(turn["content"])
    pieces.append((full[pos:], False))
    return pieces


def render_text(conv: list[dict[str, str]], template: str = "chatml", eos: str = "", tokenizer: Any = None) -> str:
    return "".join(t for t, _ in segments(conv, template, "all", eos, tokenizer))


def tokenize_segments(pieces_per_row: list[list[tuple[str, bool]]], tokenizer: Any,
                      add_bos: bool) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels for many rows in one batched tokenizer call."""
    flat = [text for pieces in pieces_per_row for text, _ in pieces]
    encoded = tokenizer.encode_batch(flat) if flat else []
    bos = getattr(tokenizer, "bos_token_id", None) if add_bos else None
    out = []
    k = 0
    for pieces in pieces_per_row:
        ids: list[int] = []
        labels: list[int] = []
        if bos is not None:
            ids.append(bos)
            labels.append(IGNORE_INDEX)
        for _, loss in pieces:
            piece = encoded[k]
            k += 1
            ids.extend(piece)
            labels.extend(piece if loss else [IGNORE_INDEX] * len(piece))
        out.append((ids, labels))
    return out


def wants_bos(template: str, tokenizer: Any) -> bool:
    """Plain templates get the BOS the tokenizer would add itself; chat templates write their own."""
    return template != "tokenizer" and bool(getattr(tokenizer, "adds_bos", False))


def render_example(conv: list[dict[str, str]], tokenizer: Any, *, template: str = "chatml",
                   train_on: str = "completion", add_eos: bool = True, max_len: int = 1024) -> Example:
    """One training example; ``template`` is a name ("auto", "chatml", ...) or a Jinja chat template."""
    name, tok = template_tokenizer(template, tokenizer)
    eos = (tok.eos_token or "") if add_eos else ""
    pieces = segments(conv, name, train_on, eos, tok)
    ((ids, labels),) = tokenize_segments([pieces], tok, wants_bos(name, tok))
    truncated = len(ids) > max_len
    return Example(ids[:max_len], labels[:max_len], truncated)


# ---- generation: the prompt the model reads before its answer ---------------------------------

@dataclass
class Prompt:
    text: str  # what the model reads, BOS not included
    input_ids: list[int]  # BOS included where training put one
    template: str  # the template used: "tokenizer" (the model's own or a custom Jinja one) or a fallback name
    stop_texts: tuple[str, ...]  # what ends an answer: the end-of-turn marker, EOS


def is_jinja(template: str) -> bool:
    return "{{" in template or "{%" in template


def template_tokenizer(template: str, tokenizer: Any) -> tuple[str, Any]:
    """(resolved template name, tokenizer adapter) for a name ("auto", chatml, ...) or a Jinja chat template.

    A Jinja template replaces the tokenizer's own on a copy of the adapter; DataError for an unknown name.
    """
    from studio.core.data.tokenizer import wrap_tokenizer

    tok = wrap_tokenizer(tokenizer)
    if is_jinja(template):
        return "tokenizer", tok.with_chat_template(template)
    if template != "auto" and template not in TEMPLATES:
        raise DataError(f"unknown chat template {template!r}; use auto, {', '.join(TEMPLATE_NAMES)} "
                        "or a Jinja chat template.")
    return resolve_template(template, tok), tok


def render_prompt(conv: list[dict[str, str]], tokenizer: Any, template: str = "auto",
                  train_on: str = "completion") -> Prompt:
    """The prompt for the assistant's next answer to ``conv`` (system?, user, assistant, ..., user).

    The text before an answer is tokenized in the same pieces as in training (``segments``), so the
    ids equal the training example's ids up to that answer's first token. A raw-text conversation
    (``[{"role": "text", ...}]``, a continued-pre-training run) is continued as it is.
    """
    name, tok = template_tokenizer(template, tokenizer)
    raw = len(conv) == 1 and conv[0].get("role") == "text"
    if raw:
        pieces = [(conv[0]["content"], True)]
    else:
        _check_prompt_turns(conv)
        loss = train_on == "all"
        pieces = segments(conv, name, train_on, "", tok)
        if name == "tokenizer":
            head = "".join(t for t, _ in pieces)
            text = tok.apply_chat_template(conv, add_generation_prompt=True)
            # A template that re-renders earlier turns does not extend the conversation's text: one piece.
            pieces = pieces + [(text[len(head):], loss)] if text.startswith(head) else [(text, loss)]
        else:
            pieces.append((TEMPLATES[name]["assistant"][0], loss))
        pieces = _merge(pieces)
    ((ids, _),) = tokenize_segments([pieces], tok, wants_bos(name, tok))
    stops = () if raw else stop_texts(name, tok)
    return Prompt("".join(t for t, _ in pieces), ids, name, stops)


def _check_prompt_turns(conv: list[dict[str, str]]) -> None:
    roles = [t.get("role") for t in conv]
    if not roles or roles[-1] != "user":
        raise DataError("a prompt is a conversation that ends with the user's turn.")
    unknown = sorted({r for r in roles if r not in ("system", "user", "assistant")}, key=str)
    if unknown:
        raise DataError(f"unknown role {unknown[0]!r} in the conversation (use system, user or assistant).")


_ANSWER_PROBE = "Okay"


def stop_texts(name: str, tokenizer: Any) -> tuple[str, ...]:
    """The end-of-turn marker a template writes after an answer (its first word), and EOS.

    Generation stops on them, and they are not part of the answer's text.
    """
    from studio.core.data.tokenizer import wrap_tokenizer

    tok = wrap_tokenizer(tokenizer)
    if name == "tokenizer":
        try:
            full = tok.apply_chat_template([{"role": "user", "content": "Hi"},
                                            {"role": "assistant", "content": _ANSWER_PROBE}])
        except DataError:
            full = ""
        at = full.rfind(_ANSWER_PROBE)
        after = full[at + len(_ANSWER_PROBE):].strip() if at >= 0 else ""
    else:
        after = TEMPLATES.get(name, TEMPLATES["chatml"])["assistant"][1].strip()
    marks = [after.split()[0] if after else "", tok.eos_token or ""]
    return tuple(dict.fromkeys(m for m in marks if m))


def check_template(template: str, tokenizer: Any = None) -> str:
    """Why ``template`` cannot render chats ("" when it can): an unknown name, broken Jinja, or a
    template that loses the turns' text or cannot place an answer's loss exactly."""
    from studio.core.data.tokenizer import TokenizerAdapter

    template = (template or "").strip()
    if not template:
        return "the template is empty."
    try:
        name, tok = template_tokenizer(template, tokenizer if tokenizer is not None else TokenizerAdapter())
        if name != "tokenizer" or not is_jinja(template):
            return ""
        return _jinja_problem(tok)
    except DataError as e:
        # The renderer's messages speak of "the model's chat template"; this one is the user's.
        return str(e).replace("the model's chat template", "the template").replace(
            "; choose a named template instead.", ".")


_PROBE = [{"role": "system", "content": "SYS-1"}, {"role": "user", "content": "USER-2"},
          {"role": "assistant", "content": "ANSWER-3"}, {"role": "user", "content": "USER-4"}]


def _jinja_problem(tok: Any) -> str:
    probe = _PROBE
    try:
        text = tok.apply_chat_template(probe, add_generation_prompt=True)
    except DataError:
        probe = _PROBE[1:]  # templates without a system role (Gemma's) refuse it: rows with one are reported alone
        text = tok.apply_chat_template(probe, add_generation_prompt=True)
    missing = [t["content"] for t in probe if t["content"] not in text]
    if missing == ["ANSWER-3"]:
        return ("the template never prints the assistant's answers (message['content'] of the assistant's turns), "
                "so there would be nothing to learn from.")
    if missing:
        return (f"the template leaves out the text of some turns ({', '.join(missing)}); it must print "
                "each message's content.")
    pieces = segments(probe[:-1], "tokenizer", "completion", "", tok)
    if [t for t, loss in pieces if loss] and "ANSWER-3" not in "".join(t for t, loss in pieces if loss):
        return "the answer's text cannot be found in the rendered template, so its loss cannot be placed."
    return ""
