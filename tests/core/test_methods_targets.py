"""One rule decides which linear modules a target-module list selects, and validation, the
parameter count and the VRAM estimate all use it (studio/core/methods/targets.py)."""

from __future__ import annotations

import pytest

from studio.core.config import RunConfig
from studio.core.methods import METHOD_CLASSES
from studio.core.methods.params import trainable_params
from studio.core.methods.targets import select_targets, target_matches
from studio.core.models import catalog_facts
from studio.core.vram import estimate
from studio.core.vram.setup import resolve_setup

MODELS = ("Llama-3.2-1B", "Qwen2.5-0.5B", "Phi-3-mini-4k-instruct", "gemma-3-1b-pt", "Qwen3-30B-A3B")


@pytest.mark.parametrize("target, name, selected", [
    ("q_proj", "q_proj", True),
    ("self_attn.q_proj", "q_proj", True),  # PEFT: model.layers.0.self_attn.q_proj ends with it
    ("model.layers.0.self_attn.q_proj", "q_proj", True),
    ("down_proj", "shared_expert.down_proj", True),  # ...mlp.shared_expert.down_proj ends with .down_proj
    ("c_proj", "mlp.c_proj", True),
    ("mlp.c_proj", "mlp.c_proj", True),
    ("proj", "q_proj", False),  # a suffix must start at a dot
    ("xq_proj", "q_proj", False),
    ("q_proj", "qkv_proj", False),
    ("shared_expert.down_proj", "mlp.down_proj", False),
])
def test_a_target_selects_a_module_when_peft_would(target, name, selected):
    assert target_matches(target, name) is selected


def _config(method: dict) -> RunConfig:
    c = RunConfig().replace("method", method)
    for k, v in {"batch_size": 2, "max_seq_len": 512, "gradient_checkpointing": "on", "compile": "off"}.items():
        c = c.replace(f"training.{k}", v)
    return c


def test_a_module_path_is_accepted_counted_and_estimated_alike():
    """target_modules=['self_attn.q_proj'] was accepted and estimated, but counted 0 parameters."""
    facts = catalog_facts("Llama-3.2-1B")
    c = _config({"name": "lora", "r": 8, "target_modules": ["self_attn.q_proj"]})
    assert c.method.problems(facts) == []
    assert [m.name for m in resolve_setup(c, facts).terms.targets] == ["q_proj"]
    q = next(s for s in facts.linear_shapes if s.name == "q_proj")
    expected = facts.num_layers * 8 * (q.in_features + q.out_features)
    assert trainable_params(c.method, facts) == estimate(c, facts).trainable_params == expected > 0
    short = _config({"name": "lora", "r": 8, "target_modules": ["q_proj"]})
    assert estimate(short, facts).peak_allocated == estimate(c, facts).peak_allocated


def test_a_module_the_model_lacks_is_named_by_validation_and_the_estimate():
    facts = catalog_facts("Llama-3.2-1B")
    c = _config({"name": "lora", "target_modules": ["c_attn", "q_proj"]})
    assert any("this model has no c_attn" in p for p in c.method.problems(facts))
    assert any("not in this model: c_attn" in n for n in estimate(c, facts).notes)
    chosen, missing = select_targets(["c_attn", "q_proj"], facts.linear_shapes)
    assert [s.name for s in chosen] == ["q_proj"] and missing == ["c_attn"]


# Settings whose count is finer than the estimate's tensor list (the estimate sizes optimizer state
# from Rank everywhere, an MLP prompt encoder, an uncapped WaveFT layer): not listed here.
AGREEING = [
    {"name": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
    {"name": "lora", "target_modules": ["self_attn.k_proj", "mlp.down_proj"]},
    {"name": "qlora", "bits": 8},
    {"name": "dora", "target_modules": ["self_attn.q_proj", "up_proj"]},
    {"name": "adalora", "init_r": 16, "target_r": 4, "target_modules": ["self_attn.q_proj", "k_proj"]},
    {"name": "ia3", "target_modules": ["self_attn.k_proj", "mlp.down_proj"]},
    {"name": "ia3", "target_modules": ["k_proj", "up_proj", "down_proj"],
     "feedforward_modules": ["up_proj", "down_proj"]},
    {"name": "waveft", "n_frequency": 1000, "target_modules": ["self_attn.q_proj"]},
    {"name": "prompt_tuning", "num_virtual_tokens": 30},
    {"name": "prefix_tuning"},
    {"name": "freeze", "trainable_layers": 3, "train_embeddings": True, "train_head": True},
    {"name": "lisa", "active_layers": 4},
]


@pytest.mark.parametrize("model", MODELS)
def test_the_count_and_the_estimate_agree_for_every_method_and_target_list(model):
    facts = catalog_facts(model)
    methods = [{"name": cls.model_fields["name"].default} for cls in METHOD_CLASSES] + AGREEING
    for method in methods:
        c = _config(method)
        assert trainable_params(c.method, facts) == estimate(c, facts).trainable_params, method
