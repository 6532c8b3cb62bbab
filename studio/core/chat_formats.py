"""Chat formats the studio can carry out of a run: as Jinja (GGUF metadata) and as Ollama Go templates.

A run is trained on one format: the tokenizer's own Jinja chat template (data.template "auto"),
one of the studio's named templates (chatml, alpaca, llama3, in studio.core.data.render) or the
run's custom Jinja template (data.template "custom", its text in data.chat_template).
``run_chat_template`` gives the Jinja text for it, which the GGUF file carries. ``translate``
finds the known format whose Ollama template renders a sample conversation exactly as the Jinja
template does (compared with studio.core.gotemplate); when none does, it names the closest one
and says what differs, so a Modelfile is never silently wrong. A default system prompt the Jinja
template inserts on its own (Qwen 2.5's "You are Qwen...") is recovered as ``system``.

Jinja rendering uses jinja2's sandbox, as transformers does; no torch, no Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from studio.core.data.render import TEMPLATES, is_jinja


@dataclass(frozen=True)
class ChatFormat:
    name: str
    title: str
    ollama: str  # Go template over .Messages
    stops: tuple[str, ...]  # strings that end an answer
    markers: tuple[str, ...]  # text every rendering of this format contains (to find the closest one)
    system_block: tuple[str, str] = ("", "")  # prefix/suffix around a system prompt, to find a default one


_CHATML = ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
           '<|im_start|>assistant\n')
_LLAMA3 = ('{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
           '{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n')
_ALPACA = ('{{- range .Messages }}{{ if eq .Role "system" }}{{ .Content }}\n\n'
           '{{ else if eq .Role "user" }}### Instruction:\n{{ .Content }}\n\n'
           '{{ else }}### Response:\n{{ .Content }}\n\n{{ end }}{{ end }}### Response:\n')
# Gemma has no system role: the system prompt opens the next user turn.
_GEMMA = ('{{- $sys := "" }}{{- range .Messages }}{{- if eq .Role "system" }}{{- $sys = .Content }}'
          '{{- else if eq .Role "user" }}<start_of_turn>user\n{{ if $sys }}{{ $sys }}\n\n{{ end }}{{ .Content }}'
          '<end_of_turn>\n{{- $sys = "" }}\n{{ else }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n{{ end }}'
          '{{- end }}<start_of_turn>model\n')
_PHI3 = ('{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n')
_PHI4 = ('{{- range .Messages }}<|im_start|>{{ .Role }}<|im_sep|>{{ .Content }}<|im_end|>{{ end }}'
         '<|im_start|>assistant<|im_sep|>')
# Mistral: the system prompt opens the first user turn; answers end with </s>.
_MISTRAL = ('{{- $sys := "" }}{{- range .Messages }}{{- if eq .Role "system" }}{{- $sys = .Content }}'
            '{{- else if eq .Role "user" }}[INST] {{ if $sys }}{{ $sys }}\n\n{{ end }}{{ .Content }} [/INST]'
            '{{- $sys = "" }}{{ else }}{{ .Content }}</s>{{ end }}{{- end }}')

FORMATS: dict[str, ChatFormat] = {f.name: f for f in (
    ChatFormat("chatml", "ChatML", _CHATML, ("<|im_end|>",), ("<|im_start|>user\n",),
               ("<|im_start|>system\n", "<|im_end|>\n")),
    ChatFormat("llama3", "Llama 3", _LLAMA3, ("<|eot_id|>",), ("<|start_header_id|>user<|end_header_id|>",),
               ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>")),
    ChatFormat("alpaca", "Alpaca", _ALPACA, ("### Instruction:",), ("### Instruction:\n",)),
    ChatFormat("gemma", "Gemma", _GEMMA, ("<end_of_turn>",), ("<start_of_turn>user\n",)),
    ChatFormat("phi3", "Phi-3", _PHI3, ("<|end|>",), ("<|user|>\n",), ("<|system|>\n", "<|end|>\n")),
    ChatFormat("phi4", "Phi-4", _PHI4, ("<|im_end|>",), ("<|im_start|>user<|im_sep|>",),
               ("<|im_start|>system<|im_sep|>", "<|im_end|>")),
    ChatFormat("mistral", "Mistral", _MISTRAL, ("</s>",), ("[INST]",)),
)}

SAMPLE_SYSTEM = "You answer briefly."
SAMPLES = (
    [{"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris."},
     {"role": "user", "content": "And of Italy?"}],
    [{"role": "system", "content": SAMPLE_SYSTEM},
     {"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "Paris."},
     {"role": "user", "content": "And of Italy?"}],
)


def named_jinja(name: str) -> str:
    """The Jinja text of one of the studio's named templates, rendering exactly what training rendered."""
    tpl = TEMPLATES[name]
    lit = json.dumps
    parts = []
    for i, role in enumerate(("system", "user")):
        prefix, suffix = tpl[role]
        parts.append(("{% if" if i == 0 else "{% elif") + f" message['role'] == {lit(role)} %}}"
                     f"{{{{ {lit(prefix)} + message['content'] + {lit(suffix)} }}}}")
    prefix, suffix = tpl["assistant"]
    parts.append(f"{{% else %}}{{{{ {lit(prefix)} + message['content'] + {lit(suffix)} }}}}{{% endif %}}")
    return ("{% for message in messages %}" + "".join(parts) + "{% endfor %}"
            f"{{% if add_generation_prompt %}}{{{{ {lit(prefix)} }}}}{{% endif %}}")


def run_chat_template(template_setting: str, tokenizer_template: Optional[str],
                      writes_bos: bool = False) -> tuple[str, str]:
    """(Jinja text, where it came from) of the format a run trained on.

    ``template_setting`` is the run's DataSpec.effective_template: a name, or the run's custom Jinja
    text, which is returned as it is. ``writes_bos``: the tokenizer puts BOS in front of plain text by
    itself, so training put it before a named template's text; a runtime that adds no BOS to a rendered
    chat (transformers' apply_chat_template) needs the template to write it (``{{ bos_token }}``), a
    GGUF's does not (llama.cpp adds it). Jinja templates write their own BOS, in training too.
    """
    if is_jinja(template_setting):
        return template_setting, "the run's custom chat template"
    if template_setting == "auto" and tokenizer_template:
        return tokenizer_template, "the tokenizer's chat template"
    name = template_setting if template_setting in TEMPLATES else "chatml"
    return ("{{ bos_token }}" if writes_bos else "") + named_jinja(name), f"the studio's {name} template"


def tokenizer_writes_bos(tokenizer: Any) -> bool:
    """Whether a (studio or transformers) tokenizer puts BOS in front of plain text by itself."""
    from studio.core.data.tokenizer import wrap_tokenizer

    tok = wrap_tokenizer(tokenizer)
    return bool(tok.adds_bos and tok.bos_token)


def starting_template(name: str, tokenizer: Any = None) -> str:
    """A named template as Jinja, to edit into a custom one; trained as it is, it gives the named template's
    exact tokens (the BOS a named template gets from the tokenizer, the Jinja text writes)."""
    return run_chat_template(name, None, writes_bos=tokenizer is not None and tokenizer_writes_bos(tokenizer))[0]


def render_jinja(template: str, messages: list[dict[str, str]], *, add_generation_prompt: bool = True,
                 bos_token: str = "", eos_token: str = "") -> str:
    """What transformers' apply_chat_template(tokenize=False) gives for this template."""
    from jinja2.exceptions import TemplateError as JinjaError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise JinjaError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: "26 Jul 2024" if "%d" in fmt else fmt
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token=bos_token, eos_token=eos_token)


def render_ollama(fmt: ChatFormat, messages: list[dict[str, str]], system: str = "") -> str:
    """What Ollama renders for this conversation (the SYSTEM prompt joins when there is no system turn)."""
    from studio.core.gotemplate import render

    turns = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    if system and not any(m["role"] == "system" for m in messages):
        turns.insert(0, {"Role": "system", "Content": system})
    return render(fmt.ollama, {"Messages": turns, "System": system})


@dataclass
class Translation:
    format: ChatFormat
    exact: bool  # the Ollama template renders the samples exactly as the Jinja template
    system: str = ""  # a default system prompt the Jinja template adds by itself
    differences: list[str] = field(default_factory=list)  # where they differ (when not exact)


def translate(template: str, *, bos_token: str = "", eos_token: str = "", adds_bos: bool = False) -> Translation:
    """The known format that renders like this Jinja template, or the closest one with the differences.

    ``adds_bos``: the tokenizer puts BOS before the text itself (llama.cpp does so too), so a
    template that writes ``bos_token`` first is compared without it.
    """
    jinja: list[str] = []
    for sample in SAMPLES:
        try:
            text = render_jinja(template, sample, bos_token=bos_token, eos_token=eos_token)
        except Exception as e:  # noqa: BLE001 - a template that fails on a plain conversation
            text = f"<the template failed: {e}>"
        if adds_bos and bos_token and text.startswith(bos_token):
            text = text[len(bos_token):]
        jinja.append(text)
    best: Optional[Translation] = None
    for fmt in FORMATS.values():
        system = _default_system(fmt, jinja[0])
        go = [render_ollama(fmt, s, system) for s in SAMPLES]
        diffs = [_difference(g, j, s) for g, j, s in zip(go, jinja, ("without", "with"))]
        diffs = [d for d in diffs if d]
        if not diffs:
            return Translation(fmt, True, system)
        hits = sum(all(m in j for m in fmt.markers) for j in jinja)
        if hits and (best is None or len(diffs) < len(best.differences)):
            best = Translation(fmt, False, system, diffs)
    return best or Translation(FORMATS["chatml"], False, "", [
        "the template matches none of the formats the studio translates (ChatML, Llama 3, Alpaca, Gemma, Phi-3, "
        "Phi-4, Mistral); the Modelfile uses ChatML"])


def _default_system(fmt: ChatFormat, rendered: str) -> str:
    """The system prompt a template writes when the conversation has none (Qwen 2.5 does)."""
    prefix, suffix = fmt.system_block
    if prefix and rendered.startswith(prefix):
        end = rendered.find(suffix, len(prefix))
        if end > 0:
            return rendered[len(prefix):end]
    return ""


def _difference(ollama: str, jinja: str, which: str) -> str:
    if ollama == jinja:
        return ""
    at = next((i for i, (a, b) in enumerate(zip(ollama, jinja)) if a != b), min(len(ollama), len(jinja)))
    return (f"a conversation {which} a system prompt renders differently from character {at}: "
            f"Jinja {jinja[max(0, at - 10):at + 30]!r}, Ollama {ollama[max(0, at - 10):at + 30]!r}")
