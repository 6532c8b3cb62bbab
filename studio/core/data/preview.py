"""The first rows of a dataset, raw and rendered the way the model will see them.

``load_preview`` reads only the head of the data (a 1 GB file opens in well under a second) and
detects its shape. ``render_preview`` turns those rows into text pieces that carry loss or not,
and, given a tokenizer, into tokens with their loss flags, for the data page's preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from studio.core.data.errors import DataError, Problem
from studio.core.data.formats import Detection, convert_row, detect_format
from studio.core.data.loaders import iter_records, resolve_source
from studio.core.data.render import IGNORE_INDEX, segments, template_tokenizer, tokenize_segments, wants_bos

PREVIEW_ROWS = 50


@dataclass
class Preview:
    source: str
    rows: list[dict[str, Any]]
    locations: list[tuple[str, int]]
    columns: list[str]
    detection: Optional[Detection] = None
    detection_error: str = ""  # why the shape wasn't recognised (the user can map columns)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True  # the whole dataset fits in the preview


@dataclass
class RenderedRow:
    location: tuple[str, int]
    pieces: list[tuple[str, bool]] = field(default_factory=list)  # (text, carries loss)
    tokens: Optional[list[tuple[str, bool]]] = None  # (token text, carries loss) when a tokenizer was given
    n_tokens: int = 0
    n_loss: int = 0
    truncated: bool = False
    problem: str = ""


def load_preview(spec: Any, n: int = PREVIEW_ROWS) -> Preview:
    """Head rows + detection. DataError only when nothing at all can be read."""
    source = resolve_source(spec)
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    locations: list[tuple[str, int]] = []
    complete = True
    for file, line, row in iter_records(source, problems):
        if len(rows) >= max(n, 1000):
            complete = False
            break
        rows.append(row)
        locations.append((file, line))
    if not rows:
        detail = f" ({problems[0]})" if problems else ""
        raise DataError(f"{source.label}: no usable rows{detail}.")
    columns: list[str] = []
    for r in rows[:200]:
        for k in r:
            if k not in columns:
                columns.append(str(k))
    detection, error = None, ""
    try:
        detection = detect_format(rows, spec.column_map, spec.format, source.label)
    except DataError as e:
        error = str(e)
    # Detection looks at up to 1,000 rows; the preview shows the first n.
    return Preview(source.label, rows[:n], locations[:n], columns, detection, error, problems, complete)


def render_preview(preview: Preview, spec: Any, tokenizer: Any = None, max_len: int = 1024,
                   limit: int = 20) -> list[RenderedRow]:
    """Rendered rows with ``spec``'s template (a name or its custom Jinja); without a tokenizer the pieces only
    (template 'auto' then means ChatML)."""
    if preview.detection is None:
        return []
    from studio.core.data.tokenizer import TokenizerAdapter

    # The template the run trains with, through the renderer training uses (a custom one replaces the model's own).
    template, tok = template_tokenizer(spec.effective_template, tokenizer if tokenizer is not None
                                       else TokenizerAdapter())
    if tokenizer is None:
        tok.eos_token = "<eos>"  # a stand-in until the model's tokenizer is read, so the preview shows where EOS goes
    eos = (tok.eos_token or "") if spec.add_eos else ""
    out: list[RenderedRow] = []
    for row, loc in zip(preview.rows[:limit], preview.locations[:limit]):
        r = RenderedRow(loc)
        try:
            conv = convert_row(row, preview.detection)
            r.pieces = segments(conv, template, spec.train_on, eos, tok)
        except (ValueError, DataError) as e:
            r.problem = str(e)
        out.append(r)
    if tokenizer is not None:
        good = [r for r in out if r.pieces]
        encoded = tokenize_segments([r.pieces for r in good], tok, wants_bos(template, tok))
        for r, (ids, labels) in zip(good, encoded):
            texts = tok.token_texts(ids[:max_len + 64])
            r.tokens = [(t, lab != IGNORE_INDEX) for t, lab in zip(texts, labels)]
            r.n_tokens = len(ids)
            r.n_loss = sum(1 for x in labels if x != IGNORE_INDEX)
            r.truncated = len(ids) > max_len
    return out
