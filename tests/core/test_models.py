"""Model facts from config.json and safetensors headers, the HF cache scan and the catalog."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from studio.core.models import (
    ModelError, catalog_facts, catalog_names, facts_from_config, inspect_model, read_safetensors_header,
    resolve_facts, scan_hf_cache, scan_hf_cache_detailed,
)


def _tiny_llama(folder, *, tie=False, chat=True, vocab=100):
    from transformers import LlamaConfig, LlamaForCausalLM
    from safetensors.torch import save_file
    import torch

    cfg = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=128, vocab_size=vocab, tie_word_embeddings=tie, max_position_embeddings=256)
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.save_pretrained(folder)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if tie:
        state.pop("lm_head.weight", None)
    save_file(state, str(folder / "model.safetensors"))
    if chat:
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    return model


def test_inspect_llama_folder_reads_config_and_exact_params(tmp_path):
    model = _tiny_llama(tmp_path)
    facts = inspect_model(tmp_path)
    assert facts.architecture == "LlamaForCausalLM"
    assert (facts.num_layers, facts.hidden_size, facts.intermediate_size) == (2, 64, 128)
    assert (facts.num_heads, facts.num_kv_heads, facts.head_dim, facts.vocab_size) == (4, 2, 16, 100)
    assert facts.tie_word_embeddings is False
    assert facts.max_position_embeddings == 256
    true_count = sum(p.numel() for p in model.parameters())
    assert facts.params_exact == true_count
    assert facts.params_from_config == true_count  # the formula agrees with the real model
    assert facts.num_params == true_count
    assert set(facts.linear_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    k = next(s for s in facts.linear_shapes if s.name == "k_proj")
    assert (k.in_features, k.out_features) == (64, 32)
    assert facts.has_chat_template and facts.has_weights
    assert facts.size_on_disk >= (tmp_path / "model.safetensors").stat().st_size


def test_tied_embeddings_counted_once(tmp_path):
    model = _tiny_llama(tmp_path, tie=True, chat=False)
    facts = inspect_model(tmp_path)
    assert facts.tie_word_embeddings
    assert facts.params_from_config == sum(p.numel() for p in model.parameters())
    assert facts.params_exact == facts.params_from_config
    assert not facts.has_chat_template


@pytest.mark.parametrize("cls_name, kwargs", [
    ("Qwen2Config", dict(tie_word_embeddings=True)),
    ("Qwen3Config", dict(head_dim=32)),
    ("Gemma2Config", dict(head_dim=32)),
    ("Phi3Config", dict()),
    ("MistralConfig", dict()),
    ("Gemma3TextConfig", dict(head_dim=32)),
])
def test_formula_matches_real_model_for_families(cls_name, kwargs):
    import transformers

    cfg = getattr(transformers, cls_name)(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                          num_key_value_heads=2, intermediate_size=96, vocab_size=120,
                                          pad_token_id=0, bos_token_id=1, eos_token_id=2, **kwargs)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    facts = facts_from_config(cfg.to_dict())
    assert facts.params_from_config == sum(p.numel() for p in model.parameters()), cls_name
    assert facts.linear_modules  # adapters have something to target


def test_nested_text_config_uses_the_language_model():
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
           "text_config": {"model_type": "gemma3_text", "hidden_size": 2560, "num_hidden_layers": 34,
                           "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                           "intermediate_size": 10240, "vocab_size": 262208},
           "vision_config": {"hidden_size": 1152}, "torch_dtype": "bfloat16"}
    facts = facts_from_config(cfg, name="gemma-3-4b")
    assert facts.multimodal and facts.hidden_size == 2560 and facts.vocab_size == 262208
    assert facts.tie_word_embeddings  # Gemma ties by default
    assert facts.torch_dtype == "bfloat16"
    assert facts.norms_per_layer == 4


def test_folder_without_config_says_what_to_pick(tmp_path):
    with pytest.raises(ModelError, match="has no config.json: pick the folder that contains config.json"):
        inspect_model(tmp_path)
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelError, match="found one in"):
        inspect_model(tmp_path)


def test_bad_inputs_give_messages_not_crashes(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        inspect_model(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="hidden_size"):
        inspect_model(tmp_path)


def test_safetensors_header_read_without_weights(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.zeros((3, 5), dtype=np.float16), "b": np.zeros((7,), dtype=np.float32)},
              str(tmp_path / "x.safetensors"))
    header = read_safetensors_header(tmp_path / "x.safetensors")
    assert header["a"]["shape"] == [3, 5] and header["b"]["dtype"] == "F32"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10 ** 12) + b"{}")
    with pytest.raises(ModelError, match="not a safetensors file"):
        read_safetensors_header(bad)


def test_sharded_index_and_missing_shard(tmp_path):
    from safetensors.numpy import save_file

    _tiny_llama(tmp_path, chat=False)
    header = read_safetensors_header(tmp_path / "model.safetensors")
    names = [k for k in header if k != "__metadata__"]
    (tmp_path / "model.safetensors").unlink()
    half = len(names) // 2
    shard_map = {}
    for i, part in enumerate((names[:half], names[half:])):
        fname = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({k: np.zeros(header[k]["shape"], dtype=np.float32) for k in part}, str(tmp_path / fname))
        shard_map.update({k: fname for k in part})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shard_map}))
    facts = inspect_model(tmp_path)
    assert facts.params_exact == facts.params_from_config
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ModelError, match="download is incomplete"):
        inspect_model(tmp_path)


def test_scan_hf_cache_lists_models_and_skips_broken(tmp_path):
    repo = tmp_path / "models--acme--tiny-llama"
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    _tiny_llama(snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (tmp_path / "models--acme--empty").mkdir()
    (tmp_path / "models--acme--broken" / "snapshots" / "r1").mkdir(parents=True)
    (tmp_path / "datasets--acme--data").mkdir()
    scan = scan_hf_cache_detailed(tmp_path)
    assert [m.name for m in scan.models] == ["acme/tiny-llama"]
    assert scan.models[0].hub_id == "acme/tiny-llama" and scan.models[0].num_layers == 2
    reasons = dict(scan.skipped)
    assert "no downloaded snapshot" in reasons["acme/empty"]
    assert "no config.json" in reasons["acme/broken"]
    assert [m.name for m in scan_hf_cache(tmp_path)] == ["acme/tiny-llama"]
    assert scan_hf_cache(tmp_path / "missing") == []


def test_scan_uses_hf_home_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    snap = tmp_path / "hub" / "models--a--b" / "snapshots" / "r"
    snap.mkdir(parents=True)
    _tiny_llama(snap, chat=False)
    assert [m.name for m in scan_hf_cache()] == ["a/b"]
    assert resolve_facts("hub", "a/b").hub_id == "a/b"


def test_catalog_has_the_popular_families():
    names = catalog_names()
    for wanted in ("meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-0.5B", "google/gemma-2-2b", "mistralai/Mistral-7B-v0.1"):
        assert wanted in names
    llama8 = catalog_facts("Llama-3.1-8B")
    assert 8.0e9 < llama8.num_params < 8.1e9  # 8,030,261,248 published
    assert not llama8.tie_word_embeddings and llama8.vocab_size == 128256
    qwen = catalog_facts("qwen/qwen2.5-0.5b")
    assert 0.49e9 < qwen.num_params < 0.50e9  # 494,032,768 published
    with pytest.raises(ModelError, match="not in the bundled catalog"):
        catalog_facts("nobody/nothing")


def test_resolve_unknown_hub_id_is_actionable():
    with pytest.raises(ModelError, match="download it first or pick a local folder"):
        resolve_facts("hub", "nobody/nothing-here")


def test_multimodal_params_include_the_vision_tower():
    import torch
    import transformers

    cfg = transformers.Gemma3Config(
        text_config=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=64, vocab_size=1000),
        vision_config=dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                           image_size=224, patch_size=14))
    with torch.device("meta"):
        model = transformers.Gemma3ForConditionalGeneration(cfg)
    facts = facts_from_config(cfg.to_dict())
    assert facts.multimodal and facts.hidden_size == 256
    assert facts.params_from_config == sum(p.numel() for p in model.parameters())
    assert catalog_facts("gemma-3-4b-pt").num_params == 4_300_079_472  # the published count


@pytest.mark.parametrize("cls_name, kwargs", [
    ("Qwen3MoeConfig", dict(moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2, head_dim=16)),
    ("MixtralConfig", dict(num_local_experts=4, num_experts_per_tok=2)),
])
def test_moe_experts_are_counted_but_not_adapter_targets(cls_name, kwargs):
    import torch
    import transformers

    cfg = getattr(transformers, cls_name)(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, vocab_size=100, **kwargs)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    facts = facts_from_config(cfg.to_dict())
    assert facts.params_from_config == sum(p.numel() for p in model.parameters())
    assert facts.expert_shapes and all(s.count == 4 for s in facts.expert_shapes)
    # transformers 5 fuses the experts into 3-D parameters: the nn.Linear targets are the attention's
    linear_names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(facts.linear_modules) <= linear_names


def test_moe_catalog_entry():
    moe = catalog_facts("Qwen3-30B-A3B")
    assert 30.4e9 < moe.num_params < 30.6e9  # 30.5 B published
    assert moe.experts_per_token == 8 and moe.num_experts == 128
