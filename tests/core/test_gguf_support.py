"""What GGUF export offers, refuses (naming what is supported) and estimates, from files alone."""

from __future__ import annotations

import json

import pytest

from studio.core.config import demo_config
from studio.core.gguf_plan import QUANTS, TYPE_SIZES, estimate, quant, tensor_plan, vocab_bytes
from studio.core.gguf_support import (SUPPORTED_TEXT, architecture_problem, classify_tokenizer, gguf_estimate,
                                      gguf_offer, method_problem)
from studio.core.models import catalog_dir
from studio.core.paths import demo_model_dir

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


def _catalog(name: str) -> dict:
    return json.loads((catalog_dir() / f"{name}.json").read_text())


def _byte_level(split: str, ignore_merges: bool = False) -> dict:
    return {"model": {"type": "BPE", "vocab": {}, "merges": [], "ignore_merges": ignore_merges},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}}


def test_the_demo_tokenizer_is_gpt2_byte_level_bpe():
    tj = json.loads((demo_model_dir() / "tokenizer.json").read_text())
    plan = classify_tokenizer(tj)
    assert (plan.model, plan.pre, plan.problem) == ("gpt2", "gpt-2", "")


@pytest.mark.parametrize("split, ignore_merges, pre", [(LLAMA3_SPLIT, True, "llama-bpe"), (LLAMA3_SPLIT, False, "dbrx"),
                                                      (QWEN2_SPLIT, False, "qwen2")])
def test_byte_level_split_patterns_map_to_llama_cpp_pre_tokenizers(split, ignore_merges, pre):
    plan = classify_tokenizer(_byte_level(split, ignore_merges))
    assert (plan.model, plan.pre, plan.problem) == ("gpt2", pre, "")


def test_sentencepiece_style_bpe_becomes_a_llama_vocabulary_with_or_without_the_leading_space():
    mistral = {"model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []},
               "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                                  {"type": "Replace", "pattern": {"String": " "},
                                                                   "content": "▁"}]}}
    gemma = {"model": {"type": "BPE", "byte_fallback": True, "vocab": {}, "merges": []},
             "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}}
    assert classify_tokenizer(mistral).model == "llama" and classify_tokenizer(mistral).add_space_prefix
    assert classify_tokenizer(gemma).model == "llama" and not classify_tokenizer(gemma).add_space_prefix


@pytest.mark.parametrize("tj", [
    {"model": {"type": "WordPiece", "vocab": {}}},
    {"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}},
    _byte_level(r"\w+|\s+"),
])
def test_a_tokenizer_llama_cpp_cannot_reproduce_is_refused_naming_what_is_supported(tj):
    plan = classify_tokenizer(tj)
    assert plan.problem and not plan.model
    assert "byte-level" in plan.problem or "pattern" in plan.problem


def test_an_unsupported_architecture_is_refused_naming_the_supported_ones():
    problem = architecture_problem({"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"]})
    assert "GPTNeoXForCausalLM" in problem and SUPPORTED_TEXT in problem


def test_gemma_attention_scale_and_unknown_rope_are_refused_before_any_work():
    gemma = {**_catalog("gemma-2-2b"), "query_pre_attn_scalar": 144}
    assert "1/sqrt(256)" in architecture_problem(gemma)
    assert architecture_problem(_catalog("gemma-2-2b")) == ""
    llama = {**_catalog("Llama-3.2-1B"), "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}
    assert "dynamic" in architecture_problem(llama)


@pytest.mark.parametrize("name", ["Llama-3.2-1B", "Llama-3.1-8B", "Mistral-7B-v0.3", "Qwen2.5-0.5B", "Qwen3-0.6B",
                                  "gemma-2-2b", "gemma-3-1b-pt", "gemma-3-4b-pt", "Phi-3-mini-4k-instruct", "phi-4",
                                  "Phi-4-mini-instruct"])
def test_the_architectures_users_bring_are_supported(name):
    assert architecture_problem(_catalog(name)) == ""


def test_a_method_that_cannot_merge_says_why_gguf_is_not_offered():
    cfg = demo_config().replace("method", {"name": "prompt_tuning"})
    offer = gguf_offer(cfg)
    assert not offer.ok
    assert "cannot be merged" in offer.reason and "Export the adapter" in offer.reason
    assert method_problem(demo_config().method) == ""


def test_the_demo_run_is_offered_with_its_tokenizer_plan():
    offer = gguf_offer(demo_config())
    assert offer.ok and offer.reason == "" and offer.arch == "llama"
    assert offer.tokenizer.pre == "gpt-2"


def test_quant_table_matches_the_gguf_library():
    gguf = pytest.importorskip("gguf")
    for q in QUANTS.values():
        assert gguf.LlamaFileType(q.ftype).name.endswith(q.label.replace("F16", "F16").upper()), q
    for name, (block, size) in TYPE_SIZES.items():
        assert gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[name]] == (block, size)
    with pytest.raises(ValueError, match="q4_k_m"):
        quant("q4_x")


def test_tensor_plan_of_a_llama_3_1b_counts_its_parameters():
    config = {**_catalog("Llama-3.2-1B"), "rope_scaling": {"rope_type": "llama3", "factor": 32.0}}
    plan = tensor_plan(config)
    params = sum(t.numel for t in plan if t.name != "rope_freqs.weight")
    assert 1.23e9 < params < 1.25e9  # Llama 3.2 1B: 1.236B with tied embeddings
    assert any(t.name == "rope_freqs.weight" for t in plan)  # Llama 3.1+ RoPE scaling
    assert not any(t.name == "output.weight" for t in plan)


def test_estimated_sizes_fall_with_the_bits_per_weight():
    config = _catalog("Llama-3.1-8B")
    sizes = [estimate(config, q).size_bytes for q in ("f32", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m",
                                                      "q2_k")]
    assert sizes == sorted(sizes, reverse=True)
    gb = {q: estimate(config, q).size_bytes / 1e9 for q in ("f16", "q8_0", "q4_k_m")}
    # llama.cpp's published sizes for Llama 3.1 8B: F16 16.1 GB, Q8_0 8.5 GB, Q4_K_M 4.9 GB
    assert gb["f16"] == pytest.approx(16.06, rel=0.01)
    assert gb["q8_0"] == pytest.approx(8.54, rel=0.01)
    assert gb["q4_k_m"] == pytest.approx(4.92, rel=0.02)


def test_the_estimate_says_size_and_time_in_words_and_counts_the_intermediate_file():
    est = gguf_estimate(demo_config(), gguf_offer(demo_config()), "q4_k_m")
    assert "MB" in est.text() and "s on this machine" in est.text()
    assert est.intermediate_bytes > est.size_bytes  # the f32 file llama.cpp quantizes from
    tj = json.loads((demo_model_dir() / "tokenizer.json").read_text())
    assert 8_000 < vocab_bytes(tj) < 20_000
