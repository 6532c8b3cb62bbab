"""Every architecture GGUF export supports, on a tiny random model: llama.cpp runs it token-exact at f16.

Each case builds a model from a transformers config (tests/worker/gguf_helpers.py), writes it with
the studio's GGUF writer and verifies it in a real llama.cpp runtime against transformers: same
token ids for the prompts and a probe text, same greedy continuations. Both tokenizer shapes are
covered: byte-level BPE (the demo's, llama.cpp "gpt2") and SentencePiece-style BPE with byte
fallback (llama.cpp "llama", the Llama 2 / Mistral / Phi-3 / Gemma shape). Gemma 3's multimodal shape
(Gemma3ForConditionalGeneration, 4B and up) exports its language model; the vision tower is left out.
"""

from __future__ import annotations

import json

import pytest
from gguf_helpers import export_folder, tiny_model

from studio.core.gguf_plan import estimate, tensor_plan, text_config, vocab_bytes
from studio.core.gguf_support import architecture_problem

CASES = [("llama", "demo"), ("llama31", "demo"), ("mistral", "spm"), ("qwen2", "demo"), ("qwen3", "demo"),
         ("gemma2", "spm"), ("gemma3", "demo"), ("gemma3mm", "demo"), ("phi3", "spm")]


@pytest.mark.parametrize("arch, tokenizer", CASES)
def test_f16_gguf_of_a_tiny_model_matches_transformers_token_for_token_in_llama_cpp(tmp_path, arch, tokenizer):
    import gguf

    folder = tiny_model(tmp_path / "model", arch, tokenizer)
    config = json.loads((folder / "config.json").read_text())
    assert architecture_problem(config) == ""
    path, verdict = export_folder(folder, "f16", tmp_path / "out")
    assert verdict.passed, verdict.to_json()
    assert [c.name for c in verdict.checks] == ["tokenizer", "greedy", "top1_agreement", "perplexity"]
    assert all(p["equal"] for p in verdict.prompts) and len(verdict.prompts) == 3
    reader = gguf.GGUFReader(str(path))
    written = {t.name: tuple(int(d) for d in reversed(t.shape.tolist())) for t in reader.tensors}
    planned = {t.name: t.shape for t in tensor_plan(config)}
    assert written == planned  # the core's plan (the size estimate's basis) is the file's tensor list
    tj = json.loads((folder / "tokenizer.json").read_text())
    template = json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template") or \
        (folder / "chat_template.jinja").read_text()
    est = estimate(config, "f16", vocab_bytes=vocab_bytes(tj, template, text_config(config)["vocab_size"]))
    assert est.size_bytes == pytest.approx(path.stat().st_size, rel=0.01)


@pytest.mark.parametrize("quant_name", ["q8_0", "q4_k_m"])
def test_quantized_types_report_agreement_and_perplexity_change(tmp_path, quant_name):
    folder = tiny_model(tmp_path / "model", "qwen3", "demo")
    path, verdict = export_folder(folder, quant_name, tmp_path / "out")
    checks = {c.name: c for c in verdict.checks}
    assert checks["tokenizer"].passed
    assert 0.0 <= checks["top1_agreement"].values["value"] <= 1.0
    assert {"source", "export", "change"} <= set(checks["perplexity"].values)
    assert "informative for a quantized file" in checks["greedy"].detail
