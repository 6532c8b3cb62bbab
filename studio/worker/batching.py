"""Micro-batches from tokenized examples: shuffled per epoch with the run's seed, padded to the longest.

Padding gets attention mask 0 and label -100, so it costs compute but never affects the loss.
Each batch counts what it processed (``tokens``), what was real text (``useful_tokens``) and how
many positions carry loss (``loss_tokens``, after the one-token shift), so the loop can report
useful tokens/s and normalise the loss over a whole optimizer step.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

from studio.core.engine_choice import SET_OFF, Choice

IGNORE_INDEX = -100


@dataclass
class MicroBatch:
    input_ids: Any  # LongTensor [B, L]
    labels: Any  # LongTensor [B, L], IGNORE_INDEX where no loss
    attention_mask: Optional[Any]  # LongTensor [B, L], or None when nothing is padded
    position_ids: Optional[Any] = None  # set for padding-free batches (restarts at 0 per example)
    tokens: int = 0
    useful_tokens: int = 0
    loss_tokens: int = 0

    def to(self, device: str) -> "MicroBatch":
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return MicroBatch(move(self.input_ids), move(self.labels), move(self.attention_mask),
                          move(self.position_ids), self.tokens, self.useful_tokens, self.loss_tokens)

    def model_inputs(self) -> dict[str, Any]:
        kw = {"input_ids": self.input_ids}
        if self.attention_mask is not None:
            kw["attention_mask"] = self.attention_mask
        if self.position_ids is not None:
            kw["position_ids"] = self.position_ids
        return kw


def loss_tokens_of(labels: Sequence[int]) -> int:
    """Positions that carry loss once labels are shifted (the first token is never predicted)."""
    return sum(1 for x in labels[1:] if x != IGNORE_INDEX)


class Batcher:
    """Yields optimizer steps (lists of micro-batches) epoch after epoch."""

    def __init__(self, examples: Sequence[Any], batch_size: int, grad_accum: int, seed: int, pad_id: int,
                 padding_free: bool = False, attention_mask: bool = True,
                 lengths: Optional[Sequence[int]] = None, group_by_length: bool = False):
        if not examples:
            raise ValueError("no examples to batch")
        self.examples = examples  # a list, or the data pipeline's lazy sequence
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.seed = seed
        self.pad_id = pad_id
        self.padding_free = padding_free
        self.attention_mask = attention_mask
        self.group_by_length = group_by_length
        self._lengths = lengths

    @property
    def micro_batches_per_epoch(self) -> int:
        return math.ceil(len(self.examples) / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return self.count_steps(len(self.examples), self.batch_size, self.grad_accum)

    @staticmethod
    def count_steps(examples: int, batch_size: int, grad_accum: int) -> int:
        """Optimizer steps in one epoch of ``examples`` (the last micro-batch and step may be short)."""
        return math.ceil(math.ceil(examples / batch_size) / grad_accum)

    def epoch_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(self.seed * 1000003 + epoch).shuffle(order)
        return order

    @property
    def lengths(self) -> Sequence[int]:
        if self._lengths is None:
            self._lengths = [len(e.input_ids) for e in self.examples]
        return self._lengths

    def epoch_steps(self, epoch: int) -> list[list[list[int]]]:
        """One epoch as optimizer steps, each a list of micro-batches of example indices."""
        order = self.epoch_order(epoch)
        if self.group_by_length:
            micro = grouped_micro_batches(order, self.lengths, self.batch_size, self.seed * 7919 + epoch)
        else:
            micro = [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        return [micro[k:k + self.grad_accum] for k in range(0, len(micro), self.grad_accum)]

    def padding_share(self, epoch: int = 0, grouped: Optional[bool] = None) -> float:
        """Share of the padded tokens of an epoch that would be padding, with or without grouping."""
        was = self.group_by_length
        self.group_by_length = was if grouped is None else grouped
        try:
            steps = self.epoch_steps(epoch)
        finally:
            self.group_by_length = was
        lens = self.lengths
        padded = sum(len(mb) * max(lens[i] for i in mb) for step in steps for mb in step)
        real = sum(lens)
        return 1.0 - real / padded if padded else 0.0

    def steps(self, total_steps: int, start_step: int = 0) -> Iterator[tuple[int, float, list[MicroBatch]]]:
        """(epoch index, fractional epoch at the end of the step, micro-batches) for total_steps steps.

        Examples are fetched step by step, so a lazily read dataset is never held in memory whole.
        ``start_step`` resumes a run: the first ``start_step`` steps are skipped without collating
        their examples (the order depends only on seed and epoch), so the first step
        yielded is exactly the one an uninterrupted run would take next.
        """
        done = 0
        epoch = 0
        while done < total_steps:
            steps = self.epoch_steps(epoch)
            if done + len(steps) <= start_step:  # a whole epoch before the resume point
                done += len(steps)
                epoch += 1
                continue
            for i, step in enumerate(steps):
                if done < start_step:
                    done += 1
                    continue
                if done >= total_steps:
                    return
                done += 1
                micro = [self.collate([self.examples[j] for j in mb]) for mb in step]
                yield epoch, epoch + (i + 1) / len(steps), micro
            epoch += 1

    def collate(self, batch: Sequence[Any]) -> MicroBatch:
        if self.padding_free:
            return collate_padding_free(batch)
        return collate_padded(batch, self.pad_id, self.attention_mask)


# Examples are sorted by length inside windows of this many micro-batches: batches come out nearly
# padding-free, while the window keeps the epoch's order random at the large scale.
GROUP_WINDOW = 64


def grouped_micro_batches(order: list[int], lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Micro-batches of similar-length examples: the shuffled order is cut into windows, each window
    sorted by length and cut into micro-batches, and all micro-batches shuffled again so the steps'
    lengths do not drift from long to short. Every example still appears exactly once."""
    window = batch_size * GROUP_WINDOW
    micro: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: lengths[i], reverse=True)
        micro.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    random.Random(seed).shuffle(micro)
    return micro


def decide_grouping(setting: str, batcher: "Batcher") -> tuple[bool, Choice]:
    """(group by length?, the choice); 'auto' groups when it removes a noticeable share of padding."""
    if setting == "off":
        return False, SET_OFF
    if batcher.padding_free:
        return False, Choice("off", "padding-free batches have no padding to remove")
    if batcher.batch_size == 1:
        return False, Choice("off", "one example per micro-batch is never padded")
    plain, grouped = batcher.padding_share(grouped=False), batcher.padding_share(grouped=True)
    if setting == "on":
        return True, Choice("on", f"set in the config: padding {plain:.0%} -> {grouped:.0%} of the tokens")
    if plain - grouped >= 0.05:
        return True, Choice("on", f"auto: padding falls from {plain:.0%} to {grouped:.0%} of the computed tokens")
    return False, Choice("off", f"auto: lengths are even, padding is only {plain:.0%}")


def segment_lengths(example: Any) -> list[int]:
    """Lengths of the examples packed into this one (one segment for an ordinary example)."""
    lens = getattr(example, "seq_lens", None)
    return list(lens) if lens and len(lens) > 1 else [len(example.input_ids)]


def collate_padded(batch: Sequence[Any], pad_id: int, attention_mask: bool = True) -> MicroBatch:
    """Rows padded on the right to the longest.

    With ``attention_mask=False`` no mask is passed: under a causal mask a real token never sees
    the padding that follows it, so the loss and gradients are unchanged, and SDPA keeps its
    fastest (mask-free, causal) kernel. Packed examples always get per-segment position ids and
    no mask, so transformers builds the block-diagonal mask that keeps segments apart.
    """
    import torch

    longest = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), longest), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    packed = any(len(segment_lengths(e)) > 1 for e in batch)
    positions = torch.zeros((len(batch), longest), dtype=torch.long) if packed else None
    useful = loss = 0
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(e.labels, dtype=torch.long)
        mask[row, :n] = 1
        if positions is not None:
            at = 0
            for length in segment_lengths(e):
                positions[row, at:at + length] = torch.arange(length)
                at += length
            if at < longest:  # padding continues the last segment: it follows every real token, no one sees it
                start = int(positions[row, at - 1]) + 1 if at else 0
                positions[row, at:] = torch.arange(start, start + longest - at)
        useful += n
        loss += loss_tokens_of(e.labels)
    padded = useful < ids.numel()
    keep_mask = attention_mask and padded and not packed
    return MicroBatch(ids, labels, mask if keep_mask else None, positions, ids.numel(), useful, loss)


def collate_padding_free(batch: Sequence[Any]) -> MicroBatch:
    """All examples in one row, positions restarting per example, no padding at all.

    The first label of every example is set to IGNORE_INDEX so no example learns to predict its
    first token from the end of the previous one.
    """
    import torch

    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    loss = 0
    for e in batch:
        ids.extend(e.input_ids)
        labels.extend([IGNORE_INDEX] + list(e.labels[1:]))
        for length in segment_lengths(e):
            positions.extend(range(length))
        loss += loss_tokens_of(e.labels)
    t = lambda xs: torch.tensor([xs], dtype=torch.long)  # noqa: E731
    return MicroBatch(t(ids), t(labels), None, t(positions), len(ids), len(ids), loss)


class EvalBatches:
    """Validation micro-batches, collated on demand so a large validation split never sits in memory."""

    def __init__(self, examples: Sequence[Any], batch_size: int, pad_id: int, attention_mask: bool = True):
        self.examples = examples
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.attention_mask = attention_mask

    def __len__(self) -> int:
        return math.ceil(len(self.examples) / self.batch_size)

    def __iter__(self) -> Iterator[MicroBatch]:
        for k in range(0, len(self.examples), self.batch_size):
            yield collate_padded(self.examples[k:k + self.batch_size], self.pad_id, self.attention_mask)
