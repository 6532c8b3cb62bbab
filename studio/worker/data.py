"""Turn a run's DataSpec into tokenized training and validation examples for the worker.

The work is the data pipeline's (studio.core.data): the same reading, rendering, loss mask,
cache, de-duplication, split and packing that the data page previews, so what the page shows is
what trains. Small datasets come back as plain lists of Examples; large ones as a lazy sequence
that reads rows from the memory-mapped Arrow cache on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from studio.core.config import RunConfig
from studio.core.data import Example
from studio.core.data.progress import Progress
from studio.core.data.render import IGNORE_INDEX

MATERIALIZE_BELOW = 50_000  # rows; beyond this examples are read lazily from the Arrow cache


@dataclass
class PreparedData:
    train: Sequence[Example]
    val: Sequence[Example]
    info: dict[str, Any] = field(default_factory=dict)  # format, evidence, rows, skipped, truncated, problems, stats
    train_lengths: Optional[list[int]] = None  # tokens of each training example as the batcher sees it


def prepare_data(cfg: RunConfig, tokenizer: Any, log: Callable[[str], None] = print) -> PreparedData:
    """Load, detect, convert, tokenize (cached), de-duplicate, split and pack. Raises DataError."""
    from studio.core.data.pipeline import tokenize_dataset
    from studio.core.data.stats import pack_lengths, require_trainable, summarise

    spec = cfg.data
    t = cfg.training
    max_len = t.max_seq_len
    marks = {"next": 0.25}

    def on_progress(fraction: float, message: str) -> None:
        if fraction >= marks["next"] and fraction < 1.0:
            marks["next"] = fraction + 0.25
            log(f"data: {message}")

    progress = Progress(on_progress)
    tok = tokenize_dataset(spec, tokenizer, progress)
    val_ds = None
    if spec.validation_path:
        val_spec = spec.model_copy(update={"path": spec.validation_path, "source": "file"})
        val_ds = tokenize_dataset(val_spec, tokenizer, progress).dataset
    stats = summarise(tok, spec, max_len=max_len, batch_size=t.batch_size, grad_accum=t.grad_accum, val_ds=val_ds)
    require_trainable(stats)
    plan = stats.plan
    train_idx = plan.train.tolist()
    val_idx = plan.val.tolist()
    table = tok.dataset.data
    val_table = val_ds.data if val_ds is not None else table
    clipped = [int(min(n, max_len)) for n in stats.lengths]  # aligned with plan.train
    if spec.packing:
        bins = pack_lengths(stats.lengths, max_len)
        groups = [[train_idx[p] for p in g] for g in bins]
        train_lengths = [sum(clipped[p] for p in g) for g in bins]
        train: Sequence[Example] = ExampleRows(table, groups, max_len)
    else:
        train = ExampleRows(table, [[i] for i in train_idx], max_len)
        train_lengths = clipped
    val: Sequence[Example] = ExampleRows(val_table, [[i] for i in val_idx], max_len)
    if len(train) <= MATERIALIZE_BELOW:
        train, val = list(train), list(val)
    log(f"data: {stats.detection.evidence}")
    log(f"data: {stats.train_rows:,} training rows, {stats.val_rows:,} validation rows, "
        f"{stats.duplicates:,} duplicates removed, {stats.skipped:,} unusable, {stats.truncated:,} truncated, "
        f"{stats.dropped:,} dropped (longer than {max_len} tokens with nothing left to learn)"
        + (f"; packed into {stats.sequences:,} sequences ({stats.packing_efficiency:.0%} full)" if spec.packing else ""))
    for p in stats.problems[:5]:
        log(f"data: {p}")
    if stats.problem_count > 5:
        log(f"data: ... and {stats.problem_count - 5:,} more problems")
    summary = stats.to_dict()
    info = {
        "format": stats.detection.format,
        "evidence": stats.detection.evidence,
        "rows": stats.rows,
        "skipped": stats.skipped,
        "duplicates": stats.duplicates,
        "truncated": stats.truncated,
        "dropped": stats.dropped,
        "train_rows": stats.train_rows,
        "val_rows": stats.val_rows,
        "sequences": stats.sequences,
        "problems": summary["problems"][:50],
        "stats": summary,
    }
    return PreparedData(train, val, info, train_lengths)


class ExampleRows(Sequence):
    """Examples read on demand from a tokenized Arrow table; each item packs one or more rows."""

    def __init__(self, table: Any, groups: list[list[int]], max_len: int):
        self._ids = table.column("input_ids")
        self._labels = table.column("labels")
        self._groups = groups
        self._max_len = max_len

    def __len__(self) -> int:
        return len(self._groups)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        group = self._groups[i]
        if len(group) == 1:
            ids = self._ids[group[0]].as_py()
            labels = self._labels[group[0]].as_py()
            return Example(ids[: self._max_len], labels[: self._max_len], len(ids) > self._max_len)
        all_ids: list[int] = []
        all_labels: list[int] = []
        lens: list[int] = []
        for row in group:
            ids = self._ids[row].as_py()[: self._max_len]
            labels = self._labels[row].as_py()[: self._max_len]
            if all_ids and labels:
                labels[0] = IGNORE_INDEX  # never learn to predict one example from the one before
            all_ids.extend(ids)
            all_labels.extend(labels)
            lens.append(len(ids))
        return Example(all_ids, all_labels, False, lens)
