"""What the Chat page reads in the background (JobSlot jobs, no Qt, no torch): the model's tokenizer for the
template editor and the prompt view, questions from the run's data, the plain models on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.core.chat_sources import ChatSource, sample_questions


def model_spec(source: ChatSource) -> Any:
    """The ModelSpec whose tokenizer the source's worker uses."""
    from studio.core.config import ModelSpec

    if source.run is not None:
        return source.config().model
    folder = Path(source.model).expanduser()
    return ModelSpec(source="local" if folder.is_dir() else "hub", path=source.model)


def template_setting(source: ChatSource) -> str:
    """The run's template, a name or its custom Jinja text ("auto" for a plain model): what "As trained" renders
    with."""
    return source.config().data.effective_template if source.run is not None else "auto"


def read_tokenizer(spec: Any) -> Any:
    from studio.core.data import load_tokenizer
    from studio.core.data.tokenizer import tokenizer_dir_for

    return load_tokenizer(tokenizer_dir_for(spec))


def questions(cfg: Any) -> tuple[str, ...]:
    return tuple(sample_questions(cfg))


def demo_models() -> list[tuple[str, str]]:  # noqa: N802 - a constant that needs the resources folder
    from studio.core.paths import demo_model_dir

    return [("Demo model", str(demo_model_dir()))]


def cached_models() -> list[tuple[str, str]]:
    """(hub id, folder) of the models in the Hugging Face cache."""
    from studio.core.models import scan_hf_cache

    return [(f.hub_id or f.name, f.path) for f in scan_hf_cache()]
