"""Trainable-parameter counts computed from the model's config facts, for every method.

``trainable_params(method, facts)`` uses the architecture numbers in a ModelFacts
(studio.core.models): layer count, hidden/MLP/head sizes, vocabulary and the per-layer linear
module shapes. The formulas mirror how PEFT builds each adapter (tests compare them with the
count of a real PEFT model). Attribute names are read with getattr so a partial facts object
(a test double, an older catalog entry) still gives a number where it can.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

_ATTENTION = {"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "c_attn", "c_proj", "query_key_value", "dense"}


def _shapes(facts: Any) -> list[Any]:
    return list(getattr(facts, "linear_shapes", ()) or ())


def _targets(shapes: Iterable[Any], targets: Any) -> list[Any]:
    if targets in ("all-linear", "auto", None):
        return list(shapes)
    return [s for s in shapes if any(s.name == t or s.name.endswith("." + t) for t in targets)]


def _full_name(layer: int, module: str) -> str:
    # Llama-style naming, close enough for rank/alpha pattern matching in estimates.
    section = "self_attn" if module in _ATTENTION else "mlp"
    return f"model.layers.{layer}.{section}.{module}"


def _pattern_value(patterns: dict[str, int], name: str, default: int) -> int:
    # PEFT's rule (peft.utils.other.get_pattern_key): the first key that matches the name's end.
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", name):
            return value
    return default


def _layers(facts: Any) -> int:
    return int(getattr(facts, "num_layers", 0) or 0)


def _hidden(facts: Any) -> int:
    return int(getattr(facts, "hidden_size", 0) or 0)


def total_params(facts: Any) -> int:
    return int(getattr(facts, "num_params", 0) or getattr(facts, "params_from_config", 0) or 0)


def _embedding(facts: Any) -> int:
    return int(getattr(facts, "vocab_size", 0) or 0) * _hidden(facts)


def _per_layer(facts: Any) -> int:
    """Parameters of one decoder layer: everything except embeddings, head and the final norm."""
    total = int(getattr(facts, "params_from_config", 0) or total_params(facts))
    tied = bool(getattr(facts, "tie_word_embeddings", False))
    rest = total - _embedding(facts) * (1 if tied else 2) - _hidden(facts)
    return max(rest, 0) // max(_layers(facts), 1)


def _lora(facts: Any, r: int, targets: Any, ranks: dict[str, int], dora: bool,
          layer_ranks: dict[int, int] | None = None) -> int:
    n = 0
    for layer in range(_layers(facts)):
        base_r = layer_ranks.get(layer, r) if layer_ranks is not None else r
        if base_r == 0:
            continue
        for s in _targets(_shapes(facts), targets):
            rank = _pattern_value(ranks, _full_name(layer, s.name), base_r) if ranks else base_r
            n += s.count * (rank * (s.in_features + s.out_features) + (s.out_features if dora else 0))
    return n


def _kv_width(facts: Any) -> int:
    kv = int(getattr(facts, "num_kv_heads", 0) or getattr(facts, "num_heads", 0) or 0)
    head_dim = int(getattr(facts, "head_dim", 0) or 0)
    return kv * head_dim if kv and head_dim else _hidden(facts)


def trainable_params(method: Any, facts: Any) -> int:
    """Parameters the method trains on this model (at the start of training, for AdaLoRA)."""
    name = method.name
    h, layers = _hidden(facts), _layers(facts)
    if name in ("lora", "qlora", "loraplus", "dora", "qdora"):
        return _lora(facts, method.r, method.target_modules, method.rank_map(), dora=name in ("dora", "qdora"))
    if name == "qr_adaptor":
        # The sensitivity pass decides ranks at training start but keeps the budget (Rank x layers).
        table = method.rank_table(layers) if method.allocation == "table" else None
        return _lora(facts, method.r, method.target_modules, method.rank_map(), dora=False, layer_ranks=table)
    if name == "adalora":
        return layers * sum(s.count * method.init_r * (s.in_features + s.out_features + 1)
                            for s in _targets(_shapes(facts), method.target_modules))
    if name == "ia3":
        targets = method.target_modules
        if targets == "auto":
            from studio.core.methods.ia3 import DEFAULT_TARGETS

            targets = list(DEFAULT_TARGETS)
        ff = set(method.feedforward_targets())
        return layers * sum(s.count * (s.in_features if s.name in ff or s.name.split(".")[-1] in ff else s.out_features)
                            for s in _targets(_shapes(facts), targets))
    if name == "vblora":
        per_layer = sum(s.count * method.r * method.num_vectors
                        * (s.in_features // method.vector_length + s.out_features // method.vector_length)
                        for s in _targets(_shapes(facts), method.target_modules))
        return method.num_vectors * method.vector_length + layers * per_layer
    if name == "waveft":
        return layers * sum(s.count * min(method.n_frequency, s.in_features * s.out_features)
                            for s in _targets(_shapes(facts), method.target_modules))
    if name == "prompt_tuning":
        return method.num_virtual_tokens * h
    if name == "p_tuning":
        e = method.encoder_hidden_size
        emb = method.num_virtual_tokens * h
        if method.encoder_type == "MLP":
            return emb + (h * e + e) + (e * e + e) + (e * h + h)
        lstm = 2 * (4 * e * (h + e) + 8 * e) + 2 * (4 * e * (2 * e + e) + 8 * e)
        return emb + lstm + (2 * e * 2 * e + 2 * e) + (2 * e * h + h)
    if name == "prefix_tuning":
        width = layers * 2 * _kv_width(facts)
        n = method.num_virtual_tokens
        if method.prefix_projection:
            kv = _kv_width(facts)
            e = method.encoder_hidden_size
            return n * kv + (kv * e + e) + (e * width + width)
        return n * width
    if name == "llama_adapter":
        return min(method.adapter_layers, layers or method.adapter_layers) * (method.adapter_len * h + 1)
    if name in ("full", "galore"):
        return total_params(facts)
    tied = bool(getattr(facts, "tie_word_embeddings", False))
    if name == "freeze":
        n = min(method.trainable_layers, layers) * _per_layer(facts) + h
        if method.train_embeddings:
            n += _embedding(facts)
        if method.train_head and not (tied and method.train_embeddings):
            n += _embedding(facts)
        return n
    if name == "lisa":
        return min(method.active_layers, layers) * _per_layer(facts) + h + _embedding(facts) * (1 if tied else 2)
    raise KeyError(f"no parameter formula for method {name!r}")


def trainable_share(method: Any, facts: Any) -> float:
    """Trainable parameters as a share of the model's (0..1); adapters add to the total."""
    total = total_params(facts)
    n = trainable_params(method, facts)
    adds = method.name not in ("full", "galore", "freeze", "lisa")
    return n / (total + n if adds else total) if total else 0.0
