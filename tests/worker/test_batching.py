"""Micro-batches: padding never carries loss, counts are right, shuffling is seeded per epoch."""

from __future__ import annotations

from studio.worker.batching import IGNORE_INDEX, Batcher, collate_padded, collate_padding_free


class _Ex:
    def __init__(self, n, prompt=0, start=1):
        self.input_ids = list(range(start, start + n))
        self.labels = [IGNORE_INDEX] * prompt + self.input_ids[prompt:]


def test_padding_is_masked_and_counted():
    b = collate_padded([_Ex(5, 2), _Ex(3, 1)], pad_id=0)
    assert b.input_ids.shape == (2, 5)
    assert b.attention_mask[1].tolist() == [1, 1, 1, 0, 0]
    assert b.labels[1].tolist()[3:] == [IGNORE_INDEX, IGNORE_INDEX]
    assert b.tokens == 10 and b.useful_tokens == 8
    assert b.loss_tokens == (5 - 2) + (3 - 1)


def test_equal_lengths_need_no_mask():
    b = collate_padded([_Ex(4), _Ex(4)], pad_id=0)
    assert b.attention_mask is None and b.tokens == b.useful_tokens == 8


def test_padding_free_restarts_positions_and_never_learns_across_examples():
    b = collate_padding_free([_Ex(3, 0, start=10), _Ex(2, 0, start=20)])
    assert b.input_ids.tolist() == [[10, 11, 12, 20, 21]]
    assert b.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert b.labels.tolist() == [[IGNORE_INDEX, 11, 12, IGNORE_INDEX, 21]]
    assert b.attention_mask is None and b.loss_tokens == 3


def test_epochs_are_shuffled_reproducibly_and_differently():
    exs = [_Ex(2, start=i) for i in range(20)]
    a, b = Batcher(exs, 4, 1, seed=7, pad_id=0), Batcher(exs, 4, 1, seed=7, pad_id=0)
    assert a.epoch_order(0) == b.epoch_order(0)
    assert a.epoch_order(0) != a.epoch_order(1)
    assert sorted(a.epoch_order(3)) == list(range(20))
    assert a.epoch_order(0) != Batcher(exs, 4, 1, seed=8, pad_id=0).epoch_order(0)


def test_steps_group_micro_batches_and_cross_epochs():
    exs = [_Ex(2, start=i) for i in range(10)]
    batcher = Batcher(exs, batch_size=3, grad_accum=2, seed=0, pad_id=0)
    assert batcher.micro_batches_per_epoch == 4 and batcher.steps_per_epoch == 2
    steps = list(batcher.steps(5))
    assert len(steps) == 5
    assert [len(mbs) for _, _, mbs in steps] == [2, 2, 2, 2, 2]
    assert [e for e, _, _ in steps] == [0, 0, 1, 1, 2]
    assert steps[1][1] == 1.0  # fractional epoch at the end of the first epoch
    seen = sum(mb.input_ids.shape[0] for _, _, mbs in steps[:2] for mb in mbs)
    assert seen == 10


class _Packed:
    def __init__(self, lens, start=1):
        n = sum(lens)
        self.input_ids = list(range(start, start + n))
        self.labels = list(self.input_ids)
        self.seq_lens = lens


def test_packed_rows_restart_positions_and_drop_the_mask():
    b = collate_padded([_Packed([3, 2]), _Ex(4)], pad_id=0)
    assert b.attention_mask is None
    assert b.position_ids.tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 4]]


def test_packed_rows_give_each_example_its_own_loss():
    """A row packed from two examples scores every token exactly as the examples alone do."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from studio.worker.loss import standard_loss_sum

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2))
    a, c = _Ex(5, 0, start=3), _Ex(4, 0, start=20)
    packed = _Packed([5, 4])
    packed.input_ids = a.input_ids + c.input_ids
    packed.labels = a.labels + [IGNORE_INDEX] + c.labels[1:]
    with torch.no_grad():
        alone = standard_loss_sum(model, collate_padded([a], 0)) + standard_loss_sum(model, collate_padded([c], 0))
        together = standard_loss_sum(model, collate_padded([packed], 0))
    assert torch.allclose(alone, together, rtol=1e-5)
