"""Find a causal LM's decoder layers, embeddings, head and the rest, whatever the architecture calls them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ModelParts:
    layers: list[list[tuple[str, Any]]]  # per decoder layer: (name, parameter)
    embeddings: list[tuple[str, Any]]
    head: list[tuple[str, Any]]  # empty when the head is tied to the embeddings
    rest: list[tuple[str, Any]]  # final norm and anything else outside the layers


def split_model(model: Any) -> ModelParts:
    import torch

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = inner.config.get_text_config() if hasattr(inner.config, "get_text_config") else inner.config
    n = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    layer_list = None
    prefix = ""
    for name, module in inner.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n and n:
            layer_list, prefix = module, name
            break
    if layer_list is None:
        raise ValueError("cannot find the model's decoder layers (no ModuleList of num_hidden_layers blocks)")
    emb = inner.get_input_embeddings()
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    emb_ids = {id(p) for p in emb.parameters()}
    head_ids = {id(p) for p in head.parameters()} - emb_ids if head is not None else set()
    layers: list[list[tuple[str, Any]]] = [[] for _ in range(n)]
    embeddings, heads, rest = [], [], []
    seen: set[int] = set()
    for name, p in inner.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if name.startswith(prefix + "."):
            index = int(name[len(prefix) + 1:].split(".", 1)[0])
            layers[index].append((name, p))
        elif id(p) in emb_ids:
            embeddings.append((name, p))
        elif id(p) in head_ids:
            heads.append((name, p))
        else:
            rest.append((name, p))
    return ModelParts(layers, embeddings, heads, rest)
