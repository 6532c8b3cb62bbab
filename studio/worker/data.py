"""Turn a run's DataSpec into tokenized training and validation examples for the worker."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from studio.core.config import RunConfig
from studio.core.data import Example, detect_format, load_dataset_rows, render_example, to_conversations


@dataclass
class PreparedData:
    train: list[Example]
    val: list[Example]
    info: dict[str, Any] = field(default_factory=dict)  # format, evidence, rows, skipped, truncated, problems


def prepare_data(cfg: RunConfig, tokenizer: Any, log: Callable[[str], None] = print) -> PreparedData:
    """Load, detect, convert, split and tokenize. Raises DataError for unusable data."""
    spec = cfg.data
    loaded = load_dataset_rows(spec, limit=spec.max_rows)
    detection = detect_format(loaded.rows, spec.column_map, spec.format)
    problems = list(loaded.problems)
    convs = to_conversations(loaded.rows, detection, problems, loaded.source)
    if spec.dedup:
        seen, unique = set(), []
        for c in convs:
            key = repr(c)
            if key not in seen:
                seen.add(key)
                unique.append(c)
        duplicates = len(convs) - len(unique)
        convs = unique
    else:
        duplicates = 0
    rng = random.Random(spec.shuffle_seed)
    rng.shuffle(convs)
    n_val = int(round(len(convs) * spec.validation_split)) if spec.validation_split > 0 else 0
    val_convs, train_convs = convs[:n_val], convs[n_val:]
    kw = dict(template=spec.template, train_on=spec.train_on, add_eos=spec.add_eos, max_len=cfg.training.max_seq_len)
    train = [render_example(c, tokenizer, **kw) for c in train_convs]
    val = [render_example(c, tokenizer, **kw) for c in val_convs]
    train = [e for e in train if e.loss_tokens > 0]
    val = [e for e in val if e.loss_tokens > 0]
    if not train:
        from studio.core.data import DataError

        raise DataError(f"{loaded.source}: no usable training rows after formatting "
                        f"({len(problems)} problems; first: {problems[0] if problems else 'none'}).")
    info = {
        "format": detection.format,
        "evidence": detection.evidence,
        "rows": len(loaded.rows),
        "skipped": loaded.skipped + (len(loaded.rows) - len(convs) - duplicates),
        "duplicates": duplicates,
        "truncated": sum(e.truncated for e in train),
        "train_rows": len(train),
        "val_rows": len(val),
        "problems": [str(p) for p in problems[:50]],
    }
    for p in problems[:5]:
        log(f"data: {p}")
    if len(problems) > 5:
        log(f"data: ... and {len(problems) - 5} more problems")
    return PreparedData(train, val, info)
