"""Datasets: reading users' files, recognising their shape, and turning rows into training text.

The public API, used by the worker, the CLI and the data page:

    load_dataset_rows(spec, limit=None) -> LoadResult      raw rows + problems found
    detect_format(rows, column_map) -> Detection           shape + human-readable evidence
    to_conversations(rows, detection) -> list[Conversation] canonical form: list of {role, content}
    render_example(conv, tokenizer, spec, max_len) -> Example  token ids + per-token loss mask

Every failure a user can cause raises DataError with a message naming the file, the line or row,
and what to do about it.
"""

from studio.core.data.errors import DataError, Problem
from studio.core.data.formats import Detection, detect_format, to_conversations
from studio.core.data.loaders import LoadResult, load_dataset_rows
from studio.core.data.render import Example, render_example, render_text

Conversation = list  # list[dict[str, str]]: [{"role": "system"|"user"|"assistant", "content": str}, ...]

__all__ = [
    "Conversation",
    "DataError",
    "Detection",
    "Example",
    "LoadResult",
    "Problem",
    "detect_format",
    "load_dataset_rows",
    "render_example",
    "render_text",
    "to_conversations",
]
