"""An Ollama Modelfile for an exported GGUF: the run's chat template, stop tokens and sampling defaults.

``modelfile(...)`` returns the text written next to the .gguf file. The TEMPLATE is the run's
chat template translated to Ollama's Go template syntax (studio.core.chat_formats); a comment
says whether a sample conversation renders identically both ways, and when it does not, what
differs. Stop tokens are the format's end-of-turn string plus the tokenizer's EOS; temperature
and top_p come from the model's generation_config.json (0 when it asks for greedy decoding).
Ollama itself is not run by the studio or its tests; see README.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Optional

from studio.core.chat_formats import Translation

DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: Optional[float]
    top_k: Optional[int]
    repeat_penalty: Optional[float]
    source: str  # where the values came from, for the comment


def sampling_from_generation_config(gen: dict[str, Any]) -> Sampling:
    """Ollama parameters from a generation_config.json (an empty dict when the model has none)."""
    if not gen:
        return Sampling(DEFAULT_TEMPERATURE, DEFAULT_TOP_P, None, None,
                        "the studio's defaults (the model has no generation_config.json)")
    if gen.get("do_sample") is False or (gen.get("do_sample") is None and gen.get("temperature") is None):
        return Sampling(0.0, None, None, _penalty(gen), "generation_config.json asks for greedy decoding")
    return Sampling(float(gen.get("temperature", 1.0)), _opt(gen.get("top_p"), float), _opt(gen.get("top_k"), int),
                    _penalty(gen), "the model's generation_config.json")


def _opt(value: Any, cast: Any) -> Any:
    return None if value is None else cast(value)


def _penalty(gen: dict[str, Any]) -> Optional[float]:
    value = gen.get("repetition_penalty")
    return None if value in (None, 1.0) else float(value)


def ollama_name(run_name: str) -> str:
    """A model name Ollama accepts: lower case letters, digits, '-', '_' and '.'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", run_name.lower()).strip("-._")
    return name or "studio-model"


def modelfile(gguf_file: str, *, run_name: str, translation: Optional[Translation], template_source: str,
              stops: list[str], sampling: Sampling, raw_text: bool = False, created: Optional[float] = None) -> str:
    """The Modelfile text; ``gguf_file`` is the file name next to it."""
    date = time.strftime("%Y-%m-%d", time.localtime(created or time.time()))
    lines = [f"# Ollama Modelfile for the studio run {run_name!r}, exported {date}.",
             f"# Create the model:  ollama create {ollama_name(run_name)} -f Modelfile",
             f"# Then chat with it: ollama run {ollama_name(run_name)}", "", f"FROM ./{gguf_file}", ""]
    if raw_text:
        lines += ["# The run trained on plain text (no chat turns), so prompts go to the model as they are.",
                  'TEMPLATE """{{ .Prompt }}"""', ""]
    elif translation is not None:
        fmt = translation.format
        if translation.exact:
            lines.append(f"# Chat template: {fmt.title}, translated from {template_source}; a sample conversation "
                         "renders identically both ways (with and without a system prompt).")
        else:
            lines.append(f"# WARNING: the chat template could not be translated exactly. It is closest to {fmt.title}, "
                         f"which is used below; {template_source} differs:")
            lines += [f"#   - {d}" for d in translation.differences]
            lines.append("# Answers may suffer; edit TEMPLATE to match the Jinja template in the GGUF file's "
                         "tokenizer.chat_template.")
        lines += [f'TEMPLATE """{fmt.ollama}"""', ""]
        if translation.system:
            lines += ["# The chat template adds this system prompt when a conversation has none.",
                      f'SYSTEM """{translation.system}"""', ""]
    for stop in dict.fromkeys(s for s in stops if s):
        lines.append(f"PARAMETER stop {_quote(stop)}")
    lines.append(f"# Sampling: {sampling.source}.")
    lines.append(f"PARAMETER temperature {sampling.temperature:g}")
    if sampling.top_p is not None:
        lines.append(f"PARAMETER top_p {sampling.top_p:g}")
    if sampling.top_k is not None:
        lines.append(f"PARAMETER top_k {sampling.top_k}")
    if sampling.repeat_penalty is not None:
        lines.append(f"PARAMETER repeat_penalty {sampling.repeat_penalty:g}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
