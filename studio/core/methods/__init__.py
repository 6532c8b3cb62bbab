"""The fine-tuning methods the studio offers: one typed config class per method, plus a registry.

Each method is a pydantic model whose ``name`` field is its discriminator; the run config holds
exactly one of them. Field metadata (``title``, ``description``, ``ge``/``le``) drives both
validation and the generated form, so every knob has one definition. Availability on the current
machine and model (``availability``) is decided without importing torch; ``problems(facts)`` says
what is wrong with particular settings for a particular model; ``trainable_params(facts)`` counts
what it trains and ``vram_terms(facts)`` is its part of the VRAM estimate. Target modules are
matched by one rule (``targets.select_targets``). Adding a method: docs/architecture.md.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from studio.core.methods.adalora import AdaLoraMethod
from studio.core.methods.base import Availability, MethodBase, MethodInfo, VramTerms
from studio.core.methods.full import FreezeMethod, FullMethod, GaloreMethod, LisaMethod
from studio.core.methods.ia3 import IA3Method
from studio.core.methods.lora import DoraMethod, LoraMethod, LoraPlusMethod, QDoraMethod, QLoraMethod
from studio.core.methods.prompts import LlamaAdapterMethod, PrefixTuningMethod, PromptTuningMethod, PTuningMethod
from studio.core.methods.qr_adaptor import QrAdaptorMethod
from studio.core.methods.vector import VbLoraMethod, WaveFtMethod

# Every concrete method class, in the order the GUI lists them.
METHOD_CLASSES: list[type[MethodBase]] = [
    LoraMethod, QLoraMethod, DoraMethod, QDoraMethod, LoraPlusMethod, AdaLoraMethod, QrAdaptorMethod,
    IA3Method, VbLoraMethod, WaveFtMethod,
    PromptTuningMethod, PTuningMethod, PrefixTuningMethod, LlamaAdapterMethod,
    FullMethod, FreezeMethod, GaloreMethod, LisaMethod,
]

# The run config's ``method``: any one of them, told apart by ``name``.
MethodConfig = Annotated[Union[tuple(METHOD_CLASSES)], Field(discriminator="name")]  # type: ignore[valid-type]


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
    "AdaLoraMethod",
    "Availability",
    "VramTerms",
    "DoraMethod",
    "FreezeMethod",
    "FullMethod",
    "GaloreMethod",
    "IA3Method",
    "LisaMethod",
    "LlamaAdapterMethod",
    "LoraMethod",
    "LoraPlusMethod",
    "METHOD_CLASSES",
    "MethodBase",
    "MethodConfig",
    "MethodInfo",
    "PTuningMethod",
    "PrefixTuningMethod",
    "PromptTuningMethod",
    "QDoraMethod",
    "QLoraMethod",
    "QrAdaptorMethod",
    "VbLoraMethod",
    "WaveFtMethod",
    "method_class",
    "method_names",
]
