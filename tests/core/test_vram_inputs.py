"""The estimate's inputs are its arguments: the config, the model's facts, the recipe and the
Machine (calibrated overheads, allocator, fused kernels). Files, the environment and installed
packages reach it only through ``machine_here()``, so a test states all of it and gets a fixed
number; a handful of exact figures pins the estimator against unintended change
(benchmarks/vram_fingerprint.py compares thousands)."""

from __future__ import annotations

import json

import pytest

from studio.core.config import RunConfig
from studio.core.models import catalog_facts
from studio.core.vram import STUDIO, Machine, Overheads, estimate, hf_peft_recipe, machine_here
from studio.core.vram.calibration import calibration_path

HERE_LIKE = Machine(expandable_segments=True, fused_kernels=False)
FUSED_FIXED = Machine(expandable_segments=False, fused_kernels=True)


def _config(method: dict, gc: str, seq: int, compute: str) -> RunConfig:
    c = RunConfig().replace("method", method)
    training = {"gradient_checkpointing": gc, "max_seq_len": seq, "batch_size": 2, "adapter_compute": compute,
                "compile": "off"}
    for k, v in training.items():
        c = c.replace(f"training.{k}", v)
    return c


# model, method, recipe, machine, checkpointing, length, adapter compute ->
# peak allocated, peak reserved, device used, trainable parameters, peak phase
PINNED = [
    ("Llama-3.2-1B", {"name": "lora"}, STUDIO, HERE_LIKE, "on", 4096, "auto",
     4438495232, 4616035041, 5140323041, 11272192, "backward_start"),
    ("Llama-3.2-1B", {"name": "lora", "r": 8, "target_modules": ["self_attn.q_proj", "mlp.down_proj"]}, STUDIO,
     HERE_LIKE, "on", 4096, "auto", 4256567296, 4426829987, 4951117987, 1835008, "backward_start"),
    ("Qwen2.5-0.5B", {"name": "qlora"}, hf_peft_recipe(kbit_prep=True), HERE_LIKE, "off", 512, "fp32",
     5446435597, 5975457948, 6499745948, 8798208, "loss"),
    ("Phi-3-mini-4k-instruct", {"name": "dora"}, STUDIO, FUSED_FIXED, "on", 4096, "fp32",
     13718329344, 14267062517, 14791350517, 26181632, "backward_start"),
    ("gemma-3-1b-pt", {"name": "full"}, STUDIO, HERE_LIKE, "on", 4096, "auto",
     9604320000, 10812279552, 11336567552, 999885952, "backward_start"),
    ("Qwen3-30B-A3B", {"name": "galore"}, STUDIO, HERE_LIKE, "off", 512, "auto",
     364574580736, 379157563965, 379681851965, 30532122624, "step"),
    ("gemma-2-2b", {"name": "prompt_tuning"}, STUDIO, HERE_LIKE, "off", 4096, "auto",
     109363741184, 113738290831, 114262578831, 46080, "loss"),
    ("Llama-3.2-1B", {"name": "ia3"}, STUDIO, FUSED_FIXED, "off", 512, "fp32",
     4337707520, 4511215820, 5035503820, 147456, "loss"),
    ("Qwen2.5-0.5B", {"name": "freeze", "trainable_layers": 3, "train_embeddings": True, "train_head": True},
     STUDIO, HERE_LIKE, "on", 512, "auto", 3124283136, 3668821760, 4193109760, 180872704, "backward_start"),
]


@pytest.mark.parametrize("model, method, recipe, machine, gc, seq, compute, alloc, reserved, device, trainable, phase",
                         PINNED)
def test_exact_figures_stay_put(model, method, recipe, machine, gc, seq, compute, alloc, reserved, device,
                                trainable, phase):
    e = estimate(_config(method, gc, seq, compute), catalog_facts(model), recipe=recipe, machine=machine)
    assert (e.peak_allocated, e.peak_reserved, e.device_used, e.trainable_params, e.peak_phase) == \
        (alloc, reserved, device, trainable, phase)


def test_the_estimate_reads_nothing_but_its_arguments(monkeypatch):
    """A calibration file, the allocator setting and liger-kernel change machine_here(), never the
    estimate of a stated machine."""
    import studio.core.vram.machine as machine_module

    facts = catalog_facts("Qwen2.5-0.5B")
    c = _config({"name": "lora"}, "on", 1024, "auto")
    stated = Machine(Overheads(cuda_context=400 * 2**20, frag_fraction=0.05, activation_scale=1.1),
                     expandable_segments=False, fused_kernels=True)
    before = estimate(c, facts, machine=stated)
    reference = estimate(c, facts)
    calibration_path().write_text(json.dumps({"version": 1, "overheads": {"activation_scale": 1.7}}))
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128")
    monkeypatch.setattr(machine_module, "liger_installed", lambda: True)
    try:
        here = machine_here()
        assert here.overheads.activation_scale == 1.7 and here.overheads.source == "calibrated"
        assert here.expandable_segments is False and here.fused_kernels is True
        assert estimate(c, facts, machine=stated) == before
        assert estimate(c, facts) == reference  # the reference machine, whatever this one is
        assert estimate(c, facts, machine=here).peak_allocated > reference.peak_allocated
    finally:
        calibration_path().unlink()
    assert (before.peak_allocated, before.peak_reserved, before.device_used) == (1676954854, 2017706834, 2437137234)
