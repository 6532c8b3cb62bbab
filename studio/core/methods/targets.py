"""Which of a model's linear layers a target-module list names: one rule for validation, the
parameter count and the VRAM estimate.

PEFT selects a module when a target equals its full name or the full name ends with ``"." +
target`` (``self_attn.q_proj`` selects ``model.layers.0.self_attn.q_proj``). The studio knows a
module by its name inside a decoder layer (``q_proj``, ``mlp.c_proj``: ``ModelFacts.linear_shapes``),
not by the path above it, which differs between architectures and is only known once the model is
loaded. So a target selects a layer module when PEFT would select it under some path above that
name: the name ends with the target (``down_proj`` selects ``shared_expert.down_proj``) or the
target ends with the name (``self_attn.q_proj`` selects ``q_proj``), at a dot. PEFT checks the
rest of a longer target against the real path when the worker wraps the model.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, Union

from studio.core.models import LinearShape, ModelFacts

TargetModules = Union[Literal["all-linear"], list[str]]
ALL_LINEAR = "all-linear"


def target_matches(target: str, name: str) -> bool:
    """Does ``target`` (a target_modules entry) select the layer module called ``name``?"""
    return name == target or name.endswith("." + target) or target.endswith("." + name)


def select_targets(spec: Union[str, Iterable[str]],
                   shapes: Iterable[LinearShape]) -> tuple[tuple[LinearShape, ...], list[str]]:
    """The layer modules ``spec`` selects, in the model's order, and the targets that select none.

    ``spec`` is ``"all-linear"`` (every module) or a list of target names."""
    shapes = tuple(shapes)
    if spec == ALL_LINEAR:
        return shapes, []
    names = [str(t) for t in ([spec] if isinstance(spec, str) else spec)]
    chosen = tuple(s for s in shapes if any(target_matches(t, s.name) for t in names))
    missing = [t for t in names if not any(target_matches(t, s.name) for s in shapes)]
    return chosen, missing


def missing_note(missing: list[str], facts: ModelFacts) -> tuple[str, ...]:
    """The estimate's note for targets this model does not have (none when all are found)."""
    if not missing:
        return ()
    return (f"target modules not in this model: {', '.join(missing)} (it has {', '.join(facts.linear_modules)})",)


def check_targets(targets: TargetModules, facts: ModelFacts) -> list[str]:
    """A problem naming the target modules the chosen model does not have (empty when it has all)."""
    if targets == ALL_LINEAR or not facts.linear_shapes:
        return []
    _, missing = select_targets(targets, facts.linear_shapes)
    if missing:
        return [f"target_modules: this model has no {', '.join(missing)}; "
                f"its linear layers are {', '.join(facts.linear_modules)}"]
    return []


def clean_targets(v: Any, keyword: str = ALL_LINEAR) -> Any:
    """A target-module list with blanks stripped; an empty list is an error naming the keyword to use."""
    if isinstance(v, list):
        v = [m.strip() for m in v if m.strip()]
        if not v:
            raise ValueError(f"name at least one module, or use '{keyword}'")
    return v
