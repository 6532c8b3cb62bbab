"""The fine-tuning methods the studio offers: one typed config class per method, plus a registry.

Each method is a pydantic model whose ``name`` field is its discriminator; the run config holds
exactly one of them. Field metadata (``title``, ``description``, ``ge``/``le``) drives both
validation and the generated form, so every knob has one definition. Availability on the current
machine (``availability``) is decided without importing torch.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from studio.core.methods.base import MethodBase, MethodInfo, Availability
from studio.core.methods.lora import LoraMethod, QLoraMethod

# Every concrete method class, in the order the GUI lists them.
METHOD_CLASSES: list[type[MethodBase]] = [LoraMethod, QLoraMethod]

MethodConfig = Annotated[Union[LoraMethod, QLoraMethod], Field(discriminator="name")]


def method_class(name: str) -> type[MethodBase]:
    """The config class for a method name, or KeyError naming the known ones."""
    for cls in METHOD_CLASSES:
        if cls.model_fields["name"].default == name:
            return cls
    known = ", ".join(c.model_fields["name"].default for c in METHOD_CLASSES)
    raise KeyError(f"unknown method {name!r}; known methods: {known}")


def method_names() -> list[str]:
    return [c.model_fields["name"].default for c in METHOD_CLASSES]


__all__ = [
    "Availability",
    "LoraMethod",
    "METHOD_CLASSES",
    "MethodBase",
    "MethodConfig",
    "MethodInfo",
    "QLoraMethod",
    "method_class",
    "method_names",
]
