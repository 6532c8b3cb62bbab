"""Fused kernels are only ever applied where they keep the model's outputs."""

from __future__ import annotations

import sys
import types

import torch

from studio.worker.kernels import apply_liger, compile_choice


def _tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=4, num_key_value_heads=2))


def test_cpu_training_uses_no_liger():
    r = apply_liger(_tiny(), "cpu", print)
    assert not r.applied and not r.broke_model and "CUDA" in r.reason


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
    assert not r.applied and r.broke_model and "reloaded" in r.reason


def test_a_faithful_kernel_is_applied(monkeypatch):
    seen = {}

    def good_patch(model, **kw):
        seen.update(kw)

    _fake_liger(monkeypatch, good_patch)
    r = apply_liger(_tiny(), "cuda", lambda s: None)
    assert r.applied and seen["fused_linear_cross_entropy"] is False and seen["rms_norm"] is True


def test_compile_is_off_and_says_why():
    assert compile_choice().startswith("off (")
