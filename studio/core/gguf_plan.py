"""GGUF quantization types, and what a GGUF export will weigh and take, from config.json alone.

``QUANTS`` lists the types the studio writes: f32/f16/bf16/q8_0 directly with the ``gguf``
library, the K-quants by llama.cpp's own quantizer from a lossless intermediate file.
``tensor_plan(config)`` lists the tensors llama.cpp's file will hold (names, shapes);
``estimate(config, quant)`` assigns each one the type llama.cpp's quantizer would give it (the
same mixing rules: Q6_K for the output matrix, more bits for some V and FFN-down layers, the
fallback for rows that do not divide into 256-element blocks) and adds the vocabulary, so the
size is shown before any work and a test holds it against the real file. The time is a model
fitted to measured rates (docs/benchmarks.md), scaled by this machine's cores.

No torch, no Qt: the Export page asks this without a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class Quant:
    name: str  # what the user types: q4_k_m
    ftype: int  # llama.cpp's LLAMA_FTYPE_* (gguf.LlamaFileType) value
    label: str  # Q4_K_M, as llama.cpp and file names spell it
    lossless: bool  # f32/f16/bf16: greedy tokens must match the source exactly
    by_llama_cpp: bool  # quantized by llama.cpp from an intermediate file (else written directly)
    note: str
    min_top1: float = 1.0  # top-1 agreement below this means a broken file, not just rounding


QUANTS: dict[str, Quant] = {q.name: q for q in (
    Quant("f32", 0, "F32", True, False, "full precision; 4 bytes per weight"),
    Quant("f16", 1, "F16", True, False, "half precision; what llama.cpp's converter writes by default"),
    Quant("bf16", 32, "BF16", True, False, "bfloat16, the precision most models are trained in"),
    Quant("q8_0", 7, "Q8_0", False, False, "8-bit, practically lossless", 0.90),
    Quant("q6_k", 18, "Q6_K", False, True, "6-bit K-quant", 0.85),
    Quant("q5_k_m", 17, "Q5_K_M", False, True, "5-bit K-quant, more bits for sensitive layers", 0.80),
    Quant("q5_k_s", 16, "Q5_K_S", False, True, "5-bit K-quant", 0.80),
    Quant("q4_k_m", 15, "Q4_K_M", False, True, "4-bit K-quant, the usual choice for local use", 0.70),
    Quant("q4_k_s", 14, "Q4_K_S", False, True, "4-bit K-quant, a little smaller", 0.70),
    Quant("q3_k_m", 12, "Q3_K_M", False, True, "3-bit K-quant: noticeably worse", 0.55),
    Quant("q2_k", 10, "Q2_K", False, True, "2-bit K-quant: for the smallest memory only", 0.40),
)}
QUANT_NAMES = tuple(QUANTS)

# ggml tensor types: (block size in weights, bytes per block), as ggml defines them.
TYPE_SIZES: dict[str, tuple[int, int]] = {
    "F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q8_0": (32, 34), "Q5_0": (32, 22), "Q5_1": (32, 24),
    "Q4_0": (32, 18), "Q2_K": (256, 84), "Q3_K": (256, 110), "Q4_K": (256, 144), "Q5_K": (256, 176),
    "Q6_K": (256, 210),
}
# What llama.cpp uses when a row does not divide into a K-quant's 256-weight blocks.
_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
_BASE_TYPE = {"q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K", "q5_k_s": "Q5_K", "q4_k_m": "Q4_K",
              "q4_k_s": "Q4_K", "q3_k_m": "Q3_K", "q2_k": "Q2_K", "f32": "F32", "f16": "F16", "bf16": "BF16"}


def quant(name: str) -> Quant:
    """The Quant called ``name`` (case-insensitive); ValueError naming the choices otherwise."""
    q = QUANTS.get(name.strip().lower())
    if q is None:
        raise ValueError(f"unknown GGUF type {name!r}; choose one of {', '.join(QUANT_NAMES)}")
    return q


@dataclass(frozen=True)
class PlannedTensor:
    name: str  # llama.cpp's name: blk.3.attn_v.weight
    shape: tuple[int, ...]  # PyTorch order: (rows, columns); columns are what llama.cpp blocks
    role: str  # token_embd, output, attn_v, ffn_down, attn_qkv, norm, ... (what the quantizer looks at)
    layer: int = -1

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's part of a config (multimodal configs nest it under text_config)."""
    inner = config.get("text_config")
    return {**config, **inner} if isinstance(inner, dict) else config


def _head_dim(c: dict[str, Any]) -> int:
    return int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])


def tensor_plan(config: dict[str, Any]) -> list[PlannedTensor]:
    """The tensors of the GGUF file for this config, in the order the studio writes them."""
    c = text_config(config)
    mt = c.get("model_type", "")
    h, n_layer, vocab = int(c["hidden_size"]), int(c["num_hidden_layers"]), int(c["vocab_size"])
    ff, n_head = int(c["intermediate_size"]), int(c["num_attention_heads"])
    n_kv, hd = int(c.get("num_key_value_heads") or n_head), _head_dim(c)
    gemma = mt.startswith("gemma")
    tied = bool(c.get("tie_word_embeddings", gemma))
    out = [PlannedTensor("token_embd.weight", (vocab, h), "token_embd")]
    rope = rope_parameters(c)
    if rope.get("rope_type") == "llama3":
        out.append(PlannedTensor("rope_freqs.weight", (hd // 2,), "norm"))
    if rope.get("rope_type") in ("longrope", "su") and rope.get("long_factor"):
        half = int(hd * rope.get("partial_rotary_factor", 1.0)) // 2
        out += [PlannedTensor("rope_factors_long.weight", (half,), "norm"),
                PlannedTensor("rope_factors_short.weight", (half,), "norm")]
    for i in range(n_layer):
        def t(name: str, shape: tuple[int, ...], role: str) -> None:
            out.append(PlannedTensor(f"blk.{i}.{name}", shape, role, i))

        t("attn_norm.weight", (h,), "norm")
        if mt == "phi3":
            t("attn_qkv.weight", ((n_head + 2 * n_kv) * hd, h), "attn_qkv")
        else:
            t("attn_q.weight", (n_head * hd, h), "attn_q")
            t("attn_k.weight", (n_kv * hd, h), "attn_k")
            t("attn_v.weight", (n_kv * hd, h), "attn_v")
            if mt == "qwen2" or c.get("attention_bias"):
                for p, rows in (("q", n_head * hd), ("k", n_kv * hd), ("v", n_kv * hd)):
                    t(f"attn_{p}.bias", (rows,), "norm")
        if mt in ("qwen3", "gemma3", "gemma3_text"):
            t("attn_q_norm.weight", (hd,), "norm")
            t("attn_k_norm.weight", (hd,), "norm")
        t("attn_output.weight", (h, n_head * hd), "attn_output")
        if gemma:
            t("post_attention_norm.weight", (h,), "norm")
        t("ffn_norm.weight", (h,), "norm")
        if mt == "phi3":
            t("ffn_up.weight", (2 * ff, h), "ffn_up")
        else:
            t("ffn_gate.weight", (ff, h), "ffn_gate")
            t("ffn_up.weight", (ff, h), "ffn_up")
        t("ffn_down.weight", (h, ff), "ffn_down")
        if gemma:
            t("post_ffw_norm.weight", (h,), "norm")
    out.append(PlannedTensor("output_norm.weight", (h,), "norm"))
    if not tied:
        out.append(PlannedTensor("output.weight", (vocab, h), "output"))
    return out


def rope_parameters(c: dict[str, Any]) -> dict[str, Any]:
    """RoPE settings under either spelling (transformers 5's rope_parameters, older rope_scaling + rope_theta)."""
    rope = dict(c.get("rope_parameters") or c.get("rope_scaling") or {})
    if "full_attention" in rope and isinstance(rope["full_attention"], dict):
        rope = {**rope, **rope["full_attention"]}
    if "rope_type" not in rope and "type" in rope:
        rope["rope_type"] = rope["type"]
    if "rope_theta" not in rope and c.get("rope_theta") is not None:
        rope["rope_theta"] = c["rope_theta"]
    return rope


def _use_more_bits(i: int, n: int) -> bool:
    """llama.cpp's choice of the layers that get more bits in the _M mixes."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(t: PlannedTensor, quant_name: str, n_layer: int, gqa: int, tied: bool) -> str:
    """The ggml type this tensor gets in a file of type ``quant_name``."""
    q = quant_name
    if len(t.shape) == 1:
        return "F32"
    cols = t.shape[-1]
    base = _BASE_TYPE[q]
    if not QUANTS[q].by_llama_cpp:
        if base == "Q8_0" and cols % 32:
            return "F16"  # gguf's Q8_0 needs whole 32-weight blocks
        return base
    kind = t.role
    if kind == "output" or (kind == "token_embd" and tied):
        return "Q8_0" if cols % 256 else "Q6_K"
    i = t.layer
    new = base
    if kind == "attn_v":
        if q == "q2_k":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
        elif q == "q3_k_m":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif q in ("q4_k_m", "q5_k_m") and _use_more_bits(i, n_layer):
            new = "Q6_K"
        elif q == "q4_k_s" and i < 4:
            new = "Q5_K"
    elif kind == "ffn_down":
        if q == "q2_k":
            new = "Q3_K"
        elif q == "q3_k_m":
            new = "Q5_K" if i < n_layer // 16 else "Q4_K"
        elif q in ("q4_k_m", "q5_k_m") and _use_more_bits(i, n_layer):
            new = "Q6_K"
        elif q == "q4_k_s" and i < n_layer // 8:
            new = "Q5_K"
    elif kind == "attn_output":
        new = {"q2_k": "Q3_K", "q3_k_m": "Q4_K"}.get(q, new)
    elif kind == "attn_qkv":
        new = {"q3_k_m": "Q4_K", "q4_k_m": "Q5_K", "q5_k_m": "Q6_K"}.get(q, new)
    block = TYPE_SIZES[new][0]
    if cols % block:
        new = _FALLBACK.get(new, new)
        if cols % TYPE_SIZES[new][0]:
            new = "F16"
    return new


def tensor_bytes(ggml_type: str, numel: int) -> int:
    block, size = TYPE_SIZES[ggml_type]
    return numel // block * size


@dataclass(frozen=True)
class Estimate:
    quant: str
    size_bytes: int  # the finished file
    seconds: float  # merge + write + quantize + verify, on this machine
    params: int
    intermediate_bytes: int  # the lossless file a K-quant is made from (deleted afterwards); 0 if none
    types: dict[str, int] = field(default_factory=dict)  # ggml type -> weights stored in it
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step
    basis: str = ""

    def text(self) -> str:
        from studio.core.disk import human_bytes

        mins = self.seconds / 60
        took = f"{self.seconds:.0f} s" if self.seconds < 90 else f"{mins:.0f} min"
        return f"about {human_bytes(self.size_bytes)}, about {took} on this machine ({self.basis})"


# Rates measured on the reference machine (a 2-core Xeon VM, docs/benchmarks.md "GGUF export": the Llama-3.2-1B
# shape, written alone and exported from a LoRA run). Writing is one thread of numpy and does not scale; merging,
# llama.cpp's quantizer and the check's forward passes use every core, so they shrink on a machine with more.
REFERENCE_CORES = 2
RATES: dict[str, Any] = {
    "load_bytes_per_s": 500e6,  # reading the base model's safetensors from a cold page cache
    "merge_params_per_s": 120e6,  # loading the adapter and folding it in (LoRA on every linear layer, bf16)
    "write_params_per_s": {"f32": 150e6, "f16": 165e6, "bf16": 1.1e9, "q8_0": 100e6},
    "quantize_params_per_s": {"q6_k": 48e6, "q5_k_m": 38e6, "q5_k_s": 38e6, "q4_k_m": 33e6, "q4_k_s": 33e6,
                              "q3_k_m": 48e6, "q2_k": 47e6},
    "verify_token_params_per_s": 2.3e10,  # the source's reference outputs + llama.cpp's run of the file
    "fixed_s": 8.0,  # starting the worker (torch, transformers), reading the check's data, llama.cpp's child process
}
VERIFY_TOKENS = 800  # tokens of the check, counted once: both runtimes together run at the measured rate


def estimate(config: dict[str, Any], quant_name: str, *, source_bytes: Optional[int] = None,
             vocab_bytes: int = 0, verify: bool = True, cores: Optional[int] = None) -> Estimate:
    """Size and time of a GGUF export of a model with this config, before any work."""
    q = quant(quant_name)
    c = text_config(config)
    plan = tensor_plan(config)
    n_layer = int(c["num_hidden_layers"])
    n_head = int(c["num_attention_heads"])
    gqa = n_head // int(c.get("num_key_value_heads") or n_head)
    tied = not any(t.role == "output" for t in plan)
    types: dict[str, int] = {}
    size = 0
    for t in plan:
        ty = tensor_type(t, q.name, n_layer, gqa, tied)
        types[ty] = types.get(ty, 0) + t.numel
        size += tensor_bytes(ty, t.numel) + len(t.name) + 24 + 8 * len(t.shape)  # data, name, dims, type, offset
        size += 16  # alignment padding, half of 32 bytes on average
    overhead = vocab_bytes or _vocab_bytes_guess(int(c["vocab_size"]))
    size += overhead + 1024  # vocabulary and merges, the other keys, the header
    params = sum(t.numel for t in plan)
    inter = 0
    middle = "f32" if str(c.get("torch_dtype") or c.get("dtype")) == "float32" else "bf16"
    if q.by_llama_cpp:
        inter = sum(tensor_bytes(tensor_type(t, middle, n_layer, gqa, tied), t.numel) for t in plan)
    scale = REFERENCE_CORES / max(1, min(cores or os.cpu_count() or 1, 16))
    r = RATES
    steps = {"load and merge": (source_bytes if source_bytes is not None else params * 2) / r["load_bytes_per_s"]
             + params / r["merge_params_per_s"] * scale,
             "write": params / r["write_params_per_s"][middle if q.by_llama_cpp else q.name]}
    if q.by_llama_cpp:
        steps["quantize"] = params / r["quantize_params_per_s"][q.name] * scale
    if verify:
        steps["verify"] = VERIFY_TOKENS * params / r["verify_token_params_per_s"] * scale
    steps["start-up"] = r["fixed_s"]
    basis = "from rates measured on a 2-core CPU; quantizing and checking scale with this machine's cores"
    return Estimate(q.name, int(size), sum(steps.values()), params, inter, types, steps, basis)


def _vocab_bytes_guess(vocab: int) -> int:
    """Tokens (~7 bytes + 8 length bytes + 4 type bytes each) and as many merges (~12 bytes each)."""
    return vocab * (7 + 8 + 4) + vocab * 20


def vocab_bytes(tokenizer_json: dict[str, Any], chat_template: str = "", vocab_size: int = 0) -> int:
    """What a tokenizer.json takes in GGUF metadata: each token (8-byte length + text + 4-byte type, plus a
    4-byte score for SentencePiece-style ones), a "[PAD<id>]" placeholder for each embedding row past the
    tokenizer's ids (``vocab_size``), each merge (8 + text) and the chat template."""
    model = tokenizer_json.get("model") or {}
    ids = {int(i) for i in (model.get("vocab") or {}).values()}
    tokens = [str(t) for t in (model.get("vocab") or {})]
    for a in tokenizer_json.get("added_tokens") or []:
        if int(a.get("id", -1)) not in ids:
            ids.add(int(a.get("id", -1)))
            tokens.append(str(a.get("content", "")))
    per_token = 12 + (4 if model.get("byte_fallback") else 0)
    size = sum(len(t.encode("utf-8")) + per_token for t in tokens)
    size += sum(len(f"[PAD{i}]") + per_token for i in range(vocab_size) if i not in ids)
    if not model.get("byte_fallback"):
        size += sum(len((m if isinstance(m, str) else " ".join(m)).encode("utf-8")) + 8
                    for m in model.get("merges") or [])
    return size + len(chat_template.encode("utf-8"))
