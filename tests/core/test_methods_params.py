"""trainable_params(method, facts) equals the count of the real PEFT / torch model, method by method."""

from __future__ import annotations

import copy

import pytest
import torch

from studio.core.config import RunConfig
from studio.core.methods.params import trainable_params, trainable_share
from studio.core.models import facts_from_config

CASES = {
    "lora": {"name": "lora", "r": 4},
    "lora_targets": {"name": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
    "lora_pattern": {"name": "lora", "r": 4, "rank_pattern": "down_proj=8, layers\\.0\\.self_attn\\..*=2"},
    "dora": {"name": "dora", "r": 4},
    "loraplus": {"name": "loraplus", "r": 2},
    "adalora": {"name": "adalora", "init_r": 6, "target_r": 2},
    "ia3": {"name": "ia3"},
    "ia3_list": {"name": "ia3", "target_modules": ["q_proj", "up_proj", "down_proj"]},
    "vblora": {"name": "vblora", "r": 4, "num_vectors": 32, "vector_length": 16},
    "waveft": {"name": "waveft", "n_frequency": 64},
    "waveft_capped": {"name": "waveft", "n_frequency": 1500},
    "llama_adapter_clamped": {"name": "llama_adapter", "adapter_len": 4, "adapter_layers": 8},
    "prompt_tuning": {"name": "prompt_tuning", "num_virtual_tokens": 5},
    "p_tuning_mlp": {"name": "p_tuning", "num_virtual_tokens": 5, "encoder_hidden_size": 16},
    "p_tuning_lstm": {"name": "p_tuning", "num_virtual_tokens": 5, "encoder_hidden_size": 16, "encoder_type": "LSTM"},
    "prefix": {"name": "prefix_tuning", "num_virtual_tokens": 5},
    "prefix_projection": {"name": "prefix_tuning", "num_virtual_tokens": 5, "prefix_projection": True,
                          "encoder_hidden_size": 24},
    "llama_adapter": {"name": "llama_adapter", "adapter_len": 4, "adapter_layers": 2},
    "full": {"name": "full"},
    "galore": {"name": "galore"},
    "freeze": {"name": "freeze", "trainable_layers": 2},
    "freeze_emb_head": {"name": "freeze", "trainable_layers": 1, "train_embeddings": True, "train_head": True},
    "lisa": {"name": "lisa", "active_layers": 2},
    "qr_adaptor_table": {"name": "qr_adaptor", "allocation": "table", "r": 4, "layer_ranks": "0=0, 1=8"},
}


@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg), facts_from_config(cfg.to_dict())


@pytest.mark.parametrize("case", list(CASES))
def test_trainable_params_match_the_real_model(case, tiny):
    from studio.worker.methods import runtime_for

    base, facts = tiny
    cfg = RunConfig.from_dict({"method": CASES[case], "training": {"max_steps": 10}})
    model = runtime_for(cfg).wrap(copy.deepcopy(base))
    real = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable_params(cfg.method, facts) == real
    assert 0 < trainable_share(cfg.method, facts) <= 1


def test_full_model_count_is_the_model_size(tiny):
    base, facts = tiny
    assert trainable_params(RunConfig().replace("method", {"name": "full"}).method, facts) == \
        sum(p.numel() for p in base.parameters())
