"""Trainable-parameter counts for any method config on a model (``ModelFacts``), without torch.

Each method class owns its formula (``MethodBase.trainable_params``), written the way PEFT builds
the adapter; ``tests/core/test_methods_params.py`` compares every one with a real PEFT model.
These two functions are what callers (CLI, Compare page) use.
"""

from __future__ import annotations

from studio.core.methods.base import FULL_PARAMETER_FAMILIES, MethodBase
from studio.core.models import ModelFacts


def trainable_params(method: MethodBase, facts: ModelFacts) -> int:
    """Parameters the method trains on this model (at the start of training, for AdaLoRA)."""
    return method.trainable_params(facts)


def trainable_share(method: MethodBase, facts: ModelFacts) -> float:
    """Trainable parameters as a share of the model's (0..1); adapters add to the total."""
    total = facts.num_params
    n = method.trainable_params(facts)
    adds = method.vram_family not in FULL_PARAMETER_FAMILIES
    return n / (total + n if adds else total) if total else 0.0
