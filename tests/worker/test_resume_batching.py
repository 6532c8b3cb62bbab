"""Batcher.steps(start_step=N) yields exactly what an uninterrupted run yields from step N+1 on."""

from __future__ import annotations

from studio.worker.batching import IGNORE_INDEX, Batcher


class _Ex:
    def __init__(self, i):
        self.input_ids = [i + 1, i + 2, i + 3]
        self.labels = [IGNORE_INDEX] + self.input_ids[1:]


def _ids(steps):
    return [(epoch, round(pos, 6), [mb.input_ids.tolist() for mb in micro]) for epoch, pos, micro in steps]


def test_start_step_continues_the_same_order_across_epochs():
    examples = [_Ex(i) for i in range(23)]
    batcher = Batcher(examples, batch_size=4, grad_accum=2, seed=5, pad_id=0)
    assert batcher.steps_per_epoch == 3
    straight = _ids(batcher.steps(10))
    for start in (0, 1, 3, 4, 7, 9):
        assert _ids(batcher.steps(10, start_step=start)) == straight[start:], start


def test_skipped_steps_are_never_collated():
    batcher = Batcher([_Ex(i) for i in range(12)], batch_size=2, grad_accum=1, seed=1, pad_id=0)
    calls = []
    real = batcher.collate
    batcher.collate = lambda batch: calls.append(len(batch)) or real(batch)
    assert len(list(batcher.steps(8, start_step=7))) == 1
    assert calls == [2]


def test_start_step_continues_length_grouped_batches_too():
    examples = [_Ex(i) for i in range(40)]
    for i, e in enumerate(examples):  # varied lengths, so grouping reorders
        e.input_ids = e.input_ids * (1 + i % 5)
        e.labels = [IGNORE_INDEX] + e.input_ids[1:]
    batcher = Batcher(examples, batch_size=3, grad_accum=2, seed=9, pad_id=0, group_by_length=True)
    straight = _ids(batcher.steps(20))
    for start in (1, 6, 7, 13, 19):
        assert _ids(batcher.steps(20, start_step=start)) == straight[start:], start
