"""Fused kernels are only ever applied where they keep the model's outputs."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from studio.core.engine_choice import SET_OFF
from studio.worker.kernels import (
    COMPILE_MIN_STEPS, apply_liger, compile_layers, decide_compile, decoder_layers, uncompile_layers,
)


def _tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=4, num_key_value_heads=2))


def test_cpu_training_uses_no_liger():
    r = apply_liger(_tiny(), "cpu", print)
    assert not r.applied and not r.broke_model and "CUDA" in r.choice.reason


def _fake_liger(monkeypatch, patch):
    pkg = types.ModuleType("liger_kernel")
    sub = types.ModuleType("liger_kernel.transformers")
    sub._apply_liger_kernel_to_instance = patch
    monkeypatch.setitem(sys.modules, "liger_kernel", pkg)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", sub)


def test_a_kernel_that_changes_outputs_is_caught(monkeypatch):
    def bad_patch(model, **kw):
        model.model.norm.weight.data.mul_(3.0)  # a "kernel" that computes something else

    _fake_liger(monkeypatch, bad_patch)
    r = apply_liger(_tiny(), "cuda", lambda s: None)
    assert not r.applied and r.broke_model and "reloaded" in r.choice.reason


def test_a_faithful_kernel_is_applied(monkeypatch):
    seen = {}

    def good_patch(model, **kw):
        seen.update(kw)

    _fake_liger(monkeypatch, good_patch)
    r = apply_liger(_tiny(), "cuda", lambda s: None)
    assert r.applied and seen["fused_linear_cross_entropy"] is False and seen["rms_norm"] is True


def test_compiled_runs_leave_fusion_to_the_compiler(monkeypatch):
    _fake_liger(monkeypatch, lambda model, **kw: (_ for _ in ()).throw(AssertionError("must not patch")))
    r = apply_liger(_tiny(), "cuda", lambda s: None, compiled=True)
    assert not r.applied and not r.broke_model and "torch.compile" in r.choice.reason


def test_the_probe_tolerates_rounding_noise_but_not_a_wrong_scale():
    from studio.worker.kernels import _close

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 16, 50, generator=g) * 30
    noisy = ref + torch.randn(1, 16, 50, generator=g) * 1.5  # ~5% relative noise, elementwise up to ~6
    assert _close(noisy, ref)
    assert not _close(ref * 3, ref)
    assert not _close(ref.roll(1, dims=1), ref)


def test_compile_decision_says_why():
    on, why = decide_compile("auto", "cpu", 10_000)
    assert not on and "CUDA" in why.reason
    assert decide_compile("off", "cuda", 10_000) == (False, SET_OFF)
    import studio.worker.kernels as k

    if k._compile_unavailable():  # no triton on this machine: even 'on' explains why not
        on, why = decide_compile("on", "cuda", 10_000)
        assert not on and "triton" in why.reason
    else:
        assert not decide_compile("auto", "cuda", COMPILE_MIN_STEPS - 1)[0]
        assert decide_compile("auto", "cuda", COMPILE_MIN_STEPS)[0]


def _tiny_lora():
    from peft import LoraConfig, get_peft_model

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=4, num_key_value_heads=2))
    return get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))


def test_compiled_layers_train_like_eager_and_can_be_undone():
    model = _tiny_lora()
    layers = decoder_layers(model)
    assert len(layers) == 3 and type(layers[0]).__name__ == "LlamaDecoderLayer"
    ids = torch.randint(0, 40, (2, 9), generator=torch.Generator().manual_seed(1))

    def loss_and_grad():
        model.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grad = next(p.grad for n, p in model.named_parameters() if "lora_A" in n)
        return loss.item(), grad.clone()

    eager_loss, eager_grad = loss_and_grad()
    assert compile_layers(model, lambda s: None, backend="aot_eager") == 3
    compiled_loss, compiled_grad = loss_and_grad()
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-5)
    assert torch.allclose(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)
    assert uncompile_layers(model) == 3
    assert all(getattr(layer, "_compiled_call_impl", None) is None for layer in layers)
    assert loss_and_grad()[0] == pytest.approx(eager_loss, rel=1e-6)
