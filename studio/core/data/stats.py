"""What training will see: the split, duplicates, truncation, packing and the numbers the page shows.

``plan_rows`` decides which tokenized rows train and which validate (exact duplicates removed,
shuffled by the seed, rows whose answer would be cut off entirely dropped). ``compute_stats``
runs the pipeline and summarises it. Both work on Arrow columns with numpy, so a million rows
take seconds, and both are pure functions with a Progress, testable without Qt.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from studio.core.data.errors import DataError, Problem
from studio.core.data.formats import Detection
from studio.core.data.progress import Progress

MAX_PROBLEMS = 500  # listed one by one; the rest are counted


@dataclass
class Plan:
    """Row indices into the tokenized table(s)."""

    train: np.ndarray
    val: np.ndarray
    val_from_file: bool = False
    usable: int = 0
    duplicates: int = 0
    dropped: int = 0  # nothing left to learn after truncation
    truncated: int = 0  # cut at max length but kept


@dataclass
class DataStats:
    source: str
    detection: Detection
    rows: int  # rows read (usable or not)
    usable: int
    skipped: int  # rows that could not be used
    duplicates: int
    train_rows: int
    val_rows: int
    max_len: int
    lengths: np.ndarray  # tokens per training row before truncation (for the histogram)
    truncated: int
    dropped: int
    tokens_lost: int
    train_tokens: int  # tokens the model reads per epoch (after truncation)
    loss_tokens: int  # of which carry loss
    sequences: int  # training sequences per epoch (packed ones when packing)
    steps_per_epoch: int
    packing: bool = False
    packing_efficiency: Optional[float] = None  # share of sequence slots holding real tokens
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    from_cache: bool = False
    template: str = ""
    plan: Optional[Plan] = None

    @property
    def trainable(self) -> bool:
        return self.train_rows > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "format": self.detection.format, "evidence": self.detection.evidence,
            "column_map": self.detection.column_map, "template": self.template,
            "rows": self.rows, "usable": self.usable, "skipped": self.skipped, "duplicates": self.duplicates,
            "train_rows": self.train_rows, "val_rows": self.val_rows, "max_len": self.max_len,
            "truncated": self.truncated, "dropped": self.dropped, "tokens_lost": self.tokens_lost,
            "train_tokens": self.train_tokens, "loss_tokens": self.loss_tokens, "sequences": self.sequences,
            "steps_per_epoch": self.steps_per_epoch, "packing": self.packing,
            "packing_efficiency": self.packing_efficiency,
            "tokens_per_row": _summary(self.lengths),
            "problem_count": self.problem_count, "problems": [str(p) for p in self.problems],
            "from_cache": self.from_cache,
        }


def _summary(lengths: np.ndarray) -> dict[str, float]:
    if lengths.size == 0:
        return {}
    return {"min": int(lengths.min()), "median": float(np.median(lengths)), "mean": float(lengths.mean()),
            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}


def column(ds: Any, name: str) -> np.ndarray:
    return ds.data.column(name).to_numpy(zero_copy_only=False)


def row_entries(ds: Any) -> np.ndarray:
    """True for table entries that are rows, readable or skipped (not notes such as mixed-type warnings)."""
    problems = ds.data.column("problem").to_pylist()
    return np.fromiter((not p.startswith("!") or "skipped" in p for p in problems), dtype=bool, count=len(problems))


def plan_rows(ds: Any, spec: Any, max_len: int, val_ds: Any = None) -> Plan:
    problem = np.array([p == "" for p in ds.data.column("problem").to_pylist()], dtype=bool)
    usable = np.flatnonzero(problem)
    if getattr(spec, "max_rows", None):
        usable = usable[: spec.max_rows]
    duplicates = 0
    if spec.dedup and usable.size:
        hashes = column(ds, "hash")[usable]
        _, first = np.unique(hashes, return_index=True)
        keep = usable[np.sort(first)]
        duplicates = int(usable.size - keep.size)
    else:
        keep = usable
    keep, dropped, truncated = _drop_cut_off(ds, keep, max_len)
    if val_ds is not None:
        val_ok = np.flatnonzero(np.array([p == "" for p in val_ds.data.column("problem").to_pylist()], dtype=bool))
        val_ok, _, _ = _drop_cut_off(val_ds, val_ok, max_len)
        rng = np.random.default_rng(spec.shuffle_seed)
        return Plan(rng.permutation(keep), val_ok, True, int(usable.size), duplicates, dropped, truncated)
    rng = np.random.default_rng(spec.shuffle_seed)
    order = rng.permutation(keep)
    n_val = int(round(order.size * spec.validation_split)) if spec.validation_split > 0 else 0
    if n_val and n_val >= order.size:
        n_val = order.size - 1
    return Plan(order[n_val:], np.sort(order[:n_val]), False, int(usable.size), duplicates, dropped, truncated)


def _loss_within(ds: Any, rows: np.ndarray, max_len: int) -> np.ndarray:
    """Loss-carrying tokens of each row inside its first max_len tokens."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if rows.size == 0:
        return np.zeros(0, dtype=np.int64)
    labels = ds.data.column("labels").take(pa.array(rows))
    sliced = pc.list_slice(labels, 0, max_len)
    flat = pc.list_flatten(sliced).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(sliced).to_numpy(zero_copy_only=False)
    return np.bincount(parents[flat != -100], minlength=rows.size)


def _drop_cut_off(ds: Any, idx: np.ndarray, max_len: int) -> tuple[np.ndarray, int, int]:
    """Rows longer than max_len are cut; those with no loss token left are dropped."""
    lengths = column(ds, "n_tokens")[idx] if idx.size else np.zeros(0, dtype=np.int32)
    long_rows = idx[lengths > max_len]
    if long_rows.size == 0:
        return idx, 0, 0
    dead = long_rows[_loss_within(ds, long_rows, max_len) == 0]
    if dead.size == 0:
        return idx, 0, int(long_rows.size)
    keep = idx[~np.isin(idx, dead)]
    return keep, int(dead.size), int(long_rows.size - dead.size)


def pack_lengths(lengths: np.ndarray, max_len: int) -> list[list[int]]:
    """Group rows into sequences of at most max_len tokens (worst-fit decreasing: O(n log n)).

    Returns lists of positions into ``lengths``. Rows are never split.
    """
    order = np.argsort(-np.minimum(lengths, max_len), kind="stable")
    bins: list[list[int]] = []
    heap: list[tuple[int, int]] = []  # (-room left, bin number): the emptiest bin first
    for pos in order.tolist():
        n = int(min(lengths[pos], max_len))
        if heap and -heap[0][0] >= n:
            room, b = heapq.heappop(heap)
            bins[b].append(pos)
            heapq.heappush(heap, (room + n, b))
        else:
            bins.append([pos])
            heapq.heappush(heap, (-(max_len - n), len(bins) - 1))
    return bins


def list_problems(ds: Any, limit: int = MAX_PROBLEMS) -> tuple[list[Problem], int]:
    """The problems recorded in a tokenized table, with their locations (first ``limit``), and the count."""
    problems = ds.data.column("problem").to_pylist()
    where = [i for i, p in enumerate(problems) if p]
    if not where:
        return [], 0
    files = ds.data.column("file").take(where[:limit]).to_pylist()
    lines = ds.data.column("line").take(where[:limit]).to_pylist()
    out = []
    for i, f, ln in zip(where[:limit], files, lines):
        msg = problems[i].lstrip("!")
        out.append(Problem(msg, f or "", ln or None))
    return out, len(where)


def _jsonl_lines(path: Path, problems: list[Problem]) -> list[Problem]:
    """datasets' fast JSONL reader numbers rows, not lines; translate (blank lines shift them)."""
    want = sorted({p.line for p in problems if p.line})
    if not want:
        return problems
    mapping: dict[int, int] = {}
    row = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if raw.strip():
                row += 1
                if row in want:
                    mapping[row] = lineno
                    if len(mapping) == len(want):
                        break
    return [Problem(p.message, p.file, mapping.get(p.line, p.line), p.severity) for p in problems]


def compute_stats(spec: Any, tokenizer: Any, *, max_len: int, batch_size: int = 1, grad_accum: int = 1,
                  progress: Optional[Progress] = None) -> DataStats:
    """Tokenize everything (cached) and summarise it. Raises DataError or Cancelled."""
    from studio.core.data.pipeline import tokenize_dataset

    progress = progress or Progress()
    tok = tokenize_dataset(spec, tokenizer, progress)
    val_ds = None
    if getattr(spec, "validation_path", ""):
        val_spec = spec.model_copy(update={"path": spec.validation_path, "source": "file"})
        val_ds = tokenize_dataset(val_spec, tokenizer, progress).dataset
    return summarise(tok, spec, max_len=max_len, batch_size=batch_size, grad_accum=grad_accum, val_ds=val_ds)


def summarise(tok: Any, spec: Any, *, max_len: int, batch_size: int = 1, grad_accum: int = 1,
              val_ds: Any = None) -> DataStats:
    ds = tok.dataset
    plan = plan_rows(ds, spec, max_len, val_ds)
    is_row = row_entries(ds)
    rows = int(is_row.sum())
    n_tokens = column(ds, "n_tokens")
    lengths = n_tokens[plan.train]
    clipped = np.minimum(lengths, max_len)
    problems, count = list_problems(ds)
    if tok.rows_numbered and problems:
        problems = _jsonl_lines(tok.source.files[0], problems)
    truncated_here = int((lengths > max_len).sum())
    n_loss = column(ds, "n_loss")[plan.train]
    long_pos = np.flatnonzero(lengths > max_len)
    if long_pos.size:  # count only the loss tokens that survive the cut
        n_loss = n_loss.copy()
        n_loss[long_pos] = _loss_within(ds, plan.train[long_pos], max_len)
    packing = bool(getattr(spec, "packing", False))
    efficiency = None
    if packing and lengths.size:
        bins = pack_lengths(lengths, max_len)
        sequences = len(bins)
        efficiency = float(clipped.sum()) / (sequences * max_len)
    else:
        sequences = int(lengths.size)
    per_step = max(1, batch_size * grad_accum)
    steps = math.ceil(sequences / per_step) if sequences else 0
    kept_rows = plan.usable  # before dedup
    return DataStats(
        source=tok.source.label, detection=_with_counts(tok.detection, kept_rows, rows), rows=rows,
        usable=plan.usable, skipped=rows - plan.usable, duplicates=plan.duplicates,
        train_rows=int(plan.train.size), val_rows=int(plan.val.size), max_len=max_len, lengths=lengths,
        truncated=truncated_here, dropped=plan.dropped,
        tokens_lost=int((lengths - clipped).sum()), train_tokens=int(clipped.sum()),
        loss_tokens=int(n_loss.sum()), sequences=sequences, steps_per_epoch=steps,
        packing=packing, packing_efficiency=efficiency, problems=problems, problem_count=count,
        from_cache=tok.from_cache, template=tok.template, plan=plan)


def _with_counts(d: Detection, usable: int, rows: int) -> Detection:
    """Evidence over the whole dataset, once it has been read."""
    from studio.core.data.formats import FORMAT_FIELDS

    fields = "/".join(FORMAT_FIELDS[d.format][0])
    how = "set by hand" if d.evidence.startswith("set by hand") else "detected"
    mapped = f" (mapped {', '.join(f'{a} -> {b}' for a, b in d.column_map.items())})" if d.column_map else ""
    return Detection(d.format, f"{usable:,} of {rows:,} rows have {fields}{mapped}: {d.format} ({how})",
                     d.column_map, usable, rows)


def require_trainable(stats: DataStats) -> None:
    if not stats.trainable:
        first = f" First problem: {stats.problems[0]}" if stats.problems else ""
        raise DataError(f"{stats.source}: no rows can be trained on ({stats.skipped:,} unusable, "
                        f"{stats.dropped:,} cut off entirely by the max length of {stats.max_len}).{first}")
