"""Chunked and standard cross-entropy give the same loss and the same gradients."""

from __future__ import annotations

import pytest
import torch

from studio.worker.batching import collate_padded
from studio.worker.loss import chunked_loss_sum, resolve_loss_impl, standard_loss_sum


class _Ex:
    def __init__(self, ids, labels):
        self.input_ids, self.labels = ids, labels


def _tiny_model(vocab=97, tie=True, **extra):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=tie, initializer_range=0.2, **extra)
    return LlamaForCausalLM(cfg)


def _batch(vocab=97):
    g = torch.Generator().manual_seed(1)
    exs = []
    for n, prompt in ((12, 5), (7, 3), (10, 0)):
        ids = torch.randint(1, vocab, (n,), generator=g).tolist()
        exs.append(_Ex(ids, [-100] * prompt + ids[prompt:]))
    return collate_padded(exs, pad_id=0)


def _loss_and_grads(model, batch, fn):
    model.zero_grad(set_to_none=True)
    loss = fn(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tie", [True, False])
def test_full_model_same_loss_and_gradients(tie):
    model = _tiny_model(tie=tie)
    batch = _batch()
    assert batch.attention_mask is not None  # the rows have different lengths: padding is exercised
    ls, gs = _loss_and_grads(model, batch, standard_loss_sum)
    lc, gc = _loss_and_grads(model, batch, chunked_loss_sum)
    assert torch.allclose(ls, lc, rtol=1e-5, atol=1e-5)
    assert gs.keys() == gc.keys()
    assert ("lm_head.weight" if not tie else "model.embed_tokens.weight") in gs  # the head's gradient too
    for name in gs:
        assert torch.allclose(gs[name], gc[name], rtol=1e-4, atol=1e-5 * gs[name].abs().max().item()), name


def test_lora_same_loss_and_gradients():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_tiny_model(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                                     init_lora_weights="gaussian"))
    batch = _batch()
    ls, gs = _loss_and_grads(model, batch, standard_loss_sum)
    lc, gc = _loss_and_grads(model, batch, chunked_loss_sum)
    assert torch.allclose(ls, lc, rtol=1e-5, atol=1e-5)
    assert gs and gs.keys() == gc.keys()
    for name in gs:
        assert torch.allclose(gs[name], gc[name], rtol=1e-4, atol=1e-5 * gs[name].abs().max().item()), name


def test_chunks_smaller_than_the_batch_agree(monkeypatch):
    import studio.worker.loss as loss_mod

    model = _tiny_model()
    batch = _batch()
    full, g_full = _loss_and_grads(model, batch, chunked_loss_sum)
    monkeypatch.setattr(loss_mod, "chunk_rows", lambda vocab: 3)  # many slices, a ragged last one
    sliced, g_sliced = _loss_and_grads(model, batch, chunked_loss_sum)
    assert torch.allclose(full, sliced, rtol=1e-6)
    for name in g_full:
        assert torch.allclose(g_full[name], g_sliced[name], rtol=1e-5, atol=1e-6 * g_full[name].abs().max().item()), name


def test_evaluation_without_gradients_matches():
    model = _tiny_model()
    batch = _batch()
    with torch.no_grad():
        assert torch.allclose(standard_loss_sum(model, batch), chunked_loss_sum(model, batch), rtol=1e-5)


def test_auto_picks_chunked_and_falls_back_where_it_would_be_wrong():
    assert resolve_loss_impl("auto", _tiny_model())[0] == "chunked"
    assert resolve_loss_impl("standard", _tiny_model())[0] == "standard"
    from transformers import Gemma2Config, Gemma2ForCausalLM

    gemma = Gemma2ForCausalLM(Gemma2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                           num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                           final_logit_softcapping=30.0))
    impl, reason = resolve_loss_impl("chunked", gemma)
    assert impl == "standard" and "softcapping" in reason.reason
