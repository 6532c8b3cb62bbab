"""Datasets: reading users' files, recognising their shape, and turning rows into training text.

The public API, used by the worker, the CLI and the data page:

    load_dataset_rows(spec, limit=None) -> LoadResult      raw rows + problems found
    detect_format(rows, column_map, forced, source) -> Detection  shape + human-readable evidence
    to_conversations(rows, detection) -> list[Conversation] canonical form: list of {role, content}
    render_example(conv, tokenizer, ...) -> Example         token ids + per-token loss mask
    load_preview(spec) / render_preview(...)                the head of the data, raw and rendered
    tokenize_dataset(spec, tokenizer, progress)             every row tokenized (datasets, cached)
    compute_stats(spec, tokenizer, max_len=..., ...)        counts, lengths, truncation, packing
    load_tokenizer(model_dir)                               tokenizer.json + chat template, no torch

Every failure a user can cause raises DataError with a message naming the file, the line or row,
and what to do about it; problems that only cost some rows are returned as Problems. The readers
(readers.py) never hold a line over 8 MB in memory; conversion (formats.py) refuses binary data,
NaN and other values that aren't text rather than train their repr.
"""

from studio.core.data.errors import DataError, Problem
from studio.core.data.formats import FORMATS, Detection, convert_row, detect_format, to_conversations
from studio.core.data.loaders import LoadResult, Source, load_dataset_rows, resolve_source
from studio.core.data.preview import Preview, RenderedRow, load_preview, render_preview
from studio.core.data.progress import Cancelled, Progress
from studio.core.data.render import IGNORE_INDEX, TEMPLATE_NAMES, Example, render_example, render_text
from studio.core.data.tokenizer import TokenizerAdapter, load_tokenizer, wrap_tokenizer

Conversation = list  # list[dict[str, str]]: [{"role": "system"|"user"|"assistant", "content": str}, ...]


def tokenize_dataset(*args, **kwargs):
    """See studio.core.data.pipeline.tokenize_dataset (imported lazily: it pulls in numpy/datasets)."""
    from studio.core.data.pipeline import tokenize_dataset as impl

    return impl(*args, **kwargs)


def compute_stats(*args, **kwargs):
    """See studio.core.data.stats.compute_stats."""
    from studio.core.data.stats import compute_stats as impl

    return impl(*args, **kwargs)


__all__ = [
    "Cancelled", "Conversation", "DataError", "Detection", "Example", "FORMATS", "IGNORE_INDEX", "LoadResult",
    "Preview", "Problem", "Progress", "RenderedRow", "Source", "TEMPLATE_NAMES", "TokenizerAdapter",
    "compute_stats", "convert_row", "detect_format", "load_dataset_rows", "load_preview", "load_tokenizer",
    "render_example", "render_preview", "render_text", "resolve_source", "to_conversations", "tokenize_dataset",
    "wrap_tokenizer",
]
