"""The Data page's background work, as plain functions over core (no Qt, testable alone).

The page runs each in a worker thread (studio.ui.tasks) and receives the result on the GUI
thread. None of them imports torch or transformers: the tokenizer is read with the
``tokenizers`` library and the statistics go through ``datasets`` (which doesn't import torch).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from studio.core.config import RunConfig
from studio.core.data import (Cancelled, Preview, Progress, RenderedRow, TokenizerAdapter, load_preview, load_tokenizer,
                               render_preview)
from studio.core.data.tokenizer import tokenizer_dir_for

if TYPE_CHECKING:
    from studio.core.data.stats import DataStats


@dataclass
class StatsResult:
    stats: Optional[DataStats] = None
    cancelled: bool = False


def preview_job(config: RunConfig) -> Preview:
    return load_preview(config.data)


def tokenizer_job(config: RunConfig) -> TokenizerAdapter:
    return load_tokenizer(tokenizer_dir_for(config.model))


def render_job(preview: Preview, config: RunConfig, tokenizer: Optional[TokenizerAdapter]) -> list[RenderedRow]:
    return render_preview(preview, config.data, tokenizer, config.training.max_seq_len)


def stats_job(config: RunConfig, tokenizer: TokenizerAdapter, progress: Progress) -> StatsResult:
    from studio.core.data.stats import compute_stats

    t = config.training
    try:
        return StatsResult(compute_stats(config.data, tokenizer, max_len=t.max_seq_len, batch_size=t.batch_size,
                                         grad_accum=t.grad_accum, progress=progress))
    except Cancelled:
        return StatsResult(cancelled=True)


def progress_for(report: Callable[[int, int, str], None], cancel: Optional[threading.Event] = None) -> Progress:
    """A core Progress that forwards to a task's (current, total, label) reporter and stops when ``cancel`` is set."""
    return Progress(lambda fraction, message: report(int(fraction * 1000), 1000, message), min_interval=0.1,
                    cancel=cancel)


def data_key(config: RunConfig) -> tuple:
    d = config.data
    return (d.source, d.path, d.subset, d.split, d.format, tuple(sorted(d.column_map.items())))


def model_key(config: RunConfig) -> tuple:
    return (config.model.source, config.model.path)


def render_key(config: RunConfig) -> tuple:
    d = config.data
    return data_key(config) + model_key(config) + (d.effective_template, d.train_on, d.add_eos,
                                                   config.training.max_seq_len)


def stats_key(config: RunConfig) -> tuple:
    d, t = config.data, config.training
    return render_key(config) + (d.validation_split, d.validation_path, d.shuffle_seed, d.dedup, d.packing,
                                 d.max_rows, t.batch_size, t.grad_accum)


def describe_template(config: RunConfig, tokenizer: Optional[TokenizerAdapter], failed: bool = False) -> str:
    if config.data.template == "custom":
        return "your custom chat template"
    if config.data.template != "auto":
        return f"the {config.data.template} template"
    if tokenizer is None:
        return "ChatML for now (the model's tokenizer can't be read)" if failed else \
            "the model's chat template (loading the tokenizer…)"
    return "the model's own chat template" if tokenizer.chat_template else "ChatML (the model has no chat template)"
