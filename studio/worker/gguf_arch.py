"""Per architecture: the hyper-parameters llama.cpp reads, and each tensor under llama.cpp's name.

Names come from the ``gguf`` library's own tables (``gguf.get_tensor_name_map``); what differs
between llama.cpp and transformers is done here, the way llama.cpp's converter does it:

- llama/mistral: the Q and K projections are permuted from transformers' rotate-half RoPE layout
  to the interleaved pairs llama.cpp's "llama" RoPE rotates; Llama 3.1+ RoPE scaling becomes a
  ``rope_freqs`` tensor of per-frequency factors.
- gemma2/gemma3: transformers' RMSNorm multiplies by (1 + weight), llama.cpp by weight, so every
  norm weight gets 1 added; soft-capping, the sliding window and which layers slide are keys.
- phi3: fused qkv and gate_up projections map onto llama.cpp's fused tensors; LongRoPE factors
  become tensors.
- tied output matrices are left out (llama.cpp reuses the token embedding).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np

from studio.core.gguf_plan import rope_parameters, text_config
from studio.core.gguf_support import ARCHITECTURES
from studio.worker.errors import WorkerError

_DROP_PREFIXES = ("model.vision_tower.", "vision_tower.", "model.multi_modal_projector.", "multi_modal_projector.")


def gguf_arch(config: dict[str, Any]) -> str:
    return ARCHITECTURES[config["model_type"]].gguf_arch


def _head_dim(c: dict[str, Any]) -> int:
    return int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])


def write_hparams(writer: Any, config: dict[str, Any]) -> None:
    """The architecture's keys (context, sizes, heads, RoPE, norms, soft-caps, windows)."""
    import gguf

    c = text_config(config)
    arch = gguf_arch(config)
    hd = _head_dim(c)
    n_head = int(c["num_attention_heads"])
    writer.add_context_length(int(c.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(int(c["hidden_size"]))
    writer.add_block_count(int(c["num_hidden_layers"]))
    writer.add_feed_forward_length(int(c["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(int(c.get("num_key_value_heads") or n_head))
    writer.add_layer_norm_rms_eps(float(c.get("rms_norm_eps") or 1e-6))
    writer.add_key_length(hd)
    writer.add_value_length(hd)
    writer.add_vocab_size(int(c["vocab_size"]))
    rope = rope_parameters(c)
    writer.add_rope_freq_base(float(rope.get("rope_theta") or 10000.0))
    rope_type = rope.get("rope_type", "default")
    if rope_type == "linear" and rope.get("factor"):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type == "yarn" and rope.get("factor"):
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
        if rope.get("beta_fast") is not None:
            writer.add_rope_scaling_yarn_beta_fast(float(rope["beta_fast"]))
        if rope.get("beta_slow") is not None:
            writer.add_rope_scaling_yarn_beta_slow(float(rope["beta_slow"]))
    if arch == "llama":
        writer.add_rope_dimension_count(hd)
    elif arch in ("gemma2", "gemma3"):
        _gemma_keys(writer, c, arch)
    elif arch == "phi3":
        rot = int(hd * float(rope.get("partial_rotary_factor") or c.get("partial_rotary_factor") or 1.0))
        writer.add_rope_dimension_count(rot)
        writer.add_rope_scaling_orig_ctx_len(int(rope.get("original_max_position_embeddings")
                                                 or c.get("original_max_position_embeddings")
                                                 or c.get("max_position_embeddings") or 4096))
        writer.add_sliding_window(int(c.get("sliding_window") or 0))
        if rope_type in ("longrope", "su") and rope.get("long_factor"):
            scale = c["max_position_embeddings"] / rope["original_max_position_embeddings"]
            orig = rope["original_max_position_embeddings"]
            writer.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1 else 1.0)


def _gemma_keys(writer: Any, c: dict[str, Any], arch: str) -> None:
    n_layer = int(c["num_hidden_layers"])
    layer_types = c.get("layer_types")
    if not layer_types:  # older configs: Gemma 2 slides on even layers, Gemma 3 on 5 of every 6
        pattern = int(c.get("sliding_window_pattern") or (2 if arch == "gemma2" else 6))
        layer_types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layer)]
    sliding = [t == "sliding_attention" for t in layer_types]
    if c.get("sliding_window") and any(sliding):
        writer.add_sliding_window(int(c["sliding_window"]))
        writer.add_sliding_window_pattern(sliding)
    if arch == "gemma2" and c.get("attn_logit_softcapping"):
        writer.add_attn_logit_softcapping(float(c["attn_logit_softcapping"]))
    if c.get("final_logit_softcapping"):
        writer.add_final_logit_softcapping(float(c["final_logit_softcapping"]))
    rope = c.get("rope_parameters") or {}
    local = (rope.get("sliding_attention") or {}).get("rope_theta") or c.get("rope_local_base_freq")
    if local is None:
        local = rope_parameters(c).get("rope_theta") or 10000.0
    writer.add_rope_freq_base_swa(float(local))


def _permute(t: Any, n_head: int) -> Any:
    """transformers' rotate-half Q/K rows -> the interleaved pairs llama.cpp's "llama" RoPE expects."""
    return t.reshape(n_head, 2, t.shape[0] // n_head // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)


def extra_tensors(config: dict[str, Any]) -> Iterator[tuple[str, np.ndarray]]:
    """Tensors llama.cpp wants that transformers computes on the fly (RoPE factors)."""
    c = text_config(config)
    rope = rope_parameters(c)
    hd = _head_dim(c)
    if rope.get("rope_type") == "llama3":
        yield "rope_freqs.weight", _llama3_rope_factors(rope, hd)
    if gguf_arch(config) == "phi3" and rope.get("rope_type") in ("longrope", "su") and rope.get("long_factor"):
        yield "rope_factors_long.weight", np.asarray(rope["long_factor"], dtype=np.float32)
        yield "rope_factors_short.weight", np.asarray(rope["short_factor"], dtype=np.float32)


def _llama3_rope_factors(rope: dict[str, Any], dim: int) -> np.ndarray:
    """Llama 3.1's per-frequency scaling: long wavelengths divided by `factor`, short ones kept, a ramp between.

    Computed in float32 in transformers' order of operations, so the factors are the ones its RoPE uses.
    """
    import torch

    base = float(rope.get("rope_theta") or 500000.0)
    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings", 8192))
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    wavelen = 2 * math.pi / freqs
    smooth = (old_ctx / wavelen - low) / (high - low)
    ramp = 1 / ((1 - smooth) / factor + smooth)
    out = torch.where(wavelen < old_ctx / high, torch.ones_like(ramp),
                      torch.where(wavelen > old_ctx / low, torch.full_like(ramp, factor), ramp))
    return out.numpy().astype(np.float32)


def gguf_tensors(named: Iterator[tuple[str, Any]], config: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(llama.cpp name, shape, load) for each tensor of a merged transformers state dict.

    ``load()`` gives the tensor as llama.cpp wants it; permuting and shifting happen only then, one
    tensor at a time, so the writer never holds a second copy of the model.
    """
    import gguf

    c = text_config(config)
    arch = gguf_arch(config)
    n_layer = int(c["num_hidden_layers"])
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], n_layer)
    n_head = int(c["num_attention_heads"])
    n_kv = int(c.get("num_key_value_heads") or n_head)
    tied = bool(c.get("tie_word_embeddings", arch.startswith("gemma")))
    for name, tensor in named:
        if name.startswith(_DROP_PREFIXES) or name.endswith("rotary_emb.inv_freq"):
            continue
        name = name.replace("model.language_model.", "model.").replace("language_model.model.", "model.")
        if name.startswith("language_model.lm_head"):
            name = name[len("language_model."):]
        if name == "lm_head.weight" and (tied or arch.startswith("gemma")):
            continue
        new = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise WorkerError(f"the GGUF writer does not know where llama.cpp keeps {name} ({arch}); this model has "
                              "a tensor the standard architecture does not", kind="model")
        yield new, tuple(tensor.shape), _loader(tensor, name, arch, n_head, n_kv)


def _loader(tensor: Any, name: str, arch: str, n_head: int, n_kv: int) -> Any:
    def load() -> Any:
        t = tensor
        if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            t = _permute(t, n_head)
        elif arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            t = _permute(t, n_kv)
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            t = t.float() + 1.0
        return t

    return load
