"""Saving and loading plain model tensors for full-parameter methods (full, freeze, GaLore, LISA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

TRAINED_FILE = "trained_weights.safetensors"


def save_tensors(model: Any, out_dir: Path, names: Optional[set[str]] = None) -> Path:
    """Write the named parameters (all trainable ones when ``names`` is None) to one safetensors file."""
    from safetensors.torch import save_file

    tensors = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if (names is None and not p.requires_grad) or (names is not None and name not in names):
            continue
        if id(p) in seen:  # tied weights (embeddings = head) are stored once
            continue
        seen.add(id(p))
        tensors[name] = p.detach().contiguous().cpu()
    out = Path(out_dir) / TRAINED_FILE
    save_file(tensors, str(out), metadata={"format": "pt", "studio": "trained-parameters"})
    return out


def load_tensors_into(model: Any, folder: Path) -> list[str]:
    """Copy every tensor in the folder's safetensors files onto the model's parameter of that name."""
    from safetensors.torch import load_file

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} holds no .safetensors weights to load")
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    loaded: list[str] = []
    unknown: list[str] = []
    for f in files:
        for name, tensor in load_file(str(f)).items():
            target = params.get(name)
            if target is None:
                unknown.append(name)
                continue
            with _no_grad():
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
            loaded.append(name)
    if unknown:
        raise ValueError(f"{folder}: {len(unknown)} saved tensors do not belong to this model "
                         f"(first: {unknown[0]}); was it trained on a different base?")
    return loaded


def _no_grad():
    import torch

    return torch.no_grad()
