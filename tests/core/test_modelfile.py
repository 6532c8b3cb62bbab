"""The Ollama Modelfile: its content, and its Go template rendering what the model was trained on.

Ollama itself is not installed here; the Go templates are rendered with studio.core.gotemplate
(the subset of text/template the studio writes) and compared with the Jinja rendering that
training used (transformers' apply_chat_template for the tokenizer's template, the studio's
named templates otherwise).
"""

from __future__ import annotations

import pytest

from studio.core.chat_formats import FORMATS, SAMPLES, named_jinja, render_jinja, render_ollama, translate
from studio.core.gotemplate import TemplateError, render
from studio.core.modelfile import Sampling, modelfile, ollama_name, sampling_from_generation_config
from studio.core.paths import demo_model_dir

QWEN25 = ("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
          "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
          "helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if message.role == 'user' "
          "or (message.role == 'system' and not loop.first) or message.role == 'assistant' %}{{- '<|im_start|>' + "
          "message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}{%- if "
          "add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
LLAMA3 = ("{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if "
          "add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
GEMMA = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\\n\\n' %}"
         "{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}"
         "{% endif %}{% for message in loop_messages %}{% set role = 'model' if message['role'] == 'assistant' else "
         "message['role'] %}{{ '<start_of_turn>' + role + '\\n' + (first if loop.first else '') + "
         "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
         "{{'<start_of_turn>model\\n'}}{% endif %}")
PHI3 = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")


def test_go_template_subset_trims_branches_loops_and_assigns():
    data = {"Messages": [{"Role": "system", "Content": "S"}, {"Role": "user", "Content": "hi"}], "System": "S"}
    assert render("a  {{- .System -}}  b", data) == "aSb"
    assert render('{{ range .Messages }}{{ if eq .Role "user" }}U:{{ .Content }}{{ else }}-{{ end }}{{ end }}',
                  data) == "-U:hi"
    assert render('{{ $x := "" }}{{ range .Messages }}{{ $x = .Content }}{{ end }}{{ $x }}', data) == "hi"
    assert render('{{ if and .System (not (eq .System "T")) }}yes{{ end }}', data) == "yes"
    with pytest.raises(TemplateError):
        render("{{ range .Messages }}", data)
    with pytest.raises(TemplateError):
        render("{{ printf \"%s\" .System }}", data)


@pytest.mark.parametrize("name", ["chatml", "alpaca", "llama3"])
def test_the_studios_named_templates_translate_exactly(name):
    jinja = named_jinja(name)
    t = translate(jinja)
    assert t.exact and t.format.name == name, t.differences
    for sample in SAMPLES:
        assert render_ollama(t.format, sample) == render_jinja(jinja, sample)


@pytest.mark.parametrize("template, fmt, adds_bos, bos", [(LLAMA3, "llama3", True, "<|begin_of_text|>"),
                                                          (GEMMA, "gemma", True, "<bos>"),
                                                          (PHI3, "phi3", False, "<s>")])
def test_model_templates_translate_exactly_once_the_bos_the_tokenizer_adds_is_left_out(template, fmt, adds_bos, bos):
    t = translate(template, bos_token=bos, adds_bos=adds_bos)
    assert t.exact and t.format.name == fmt, t.differences


def test_a_default_system_prompt_becomes_the_modelfile_system_line():
    t = translate(QWEN25)
    assert t.exact and t.format.name == "chatml"
    assert t.system == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    conv = SAMPLES[0]
    assert render_ollama(t.format, conv, t.system) == render_jinja(QWEN25, conv)


def test_a_template_the_studio_cannot_translate_is_marked_in_the_modelfile_never_silently_wrong():
    odd = "{% for m in messages %}<<{{ m['role'] }}>> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}" \
          "<<assistant>>{% endif %}"
    t = translate(odd)
    assert not t.exact and t.differences
    text = modelfile("m.gguf", run_name="x", translation=t, template_source="the tokenizer's chat template",
                     stops=["</s>"], sampling=Sampling(0.7, 0.9, None, None, "test"))
    assert "# WARNING: the chat template could not be translated exactly" in text
    assert "ChatML" in text


def test_the_demo_modelfile():
    jinja = (demo_model_dir() / "chat_template.jinja").read_text()
    t = translate(jinja, bos_token="<s>", eos_token="</s>")
    gen = {"do_sample": False, "eos_token_id": [2, 5]}
    source = "the tokenizer's chat template"
    text = modelfile("demo-F16.gguf", run_name="Demo run", translation=t, template_source=source,
                     stops=["<|im_end|>", "</s>", "<|im_end|>"], sampling=sampling_from_generation_config(gen))
    lines = text.splitlines()
    assert "FROM ./demo-F16.gguf" in lines
    assert "# Create the model:  ollama create demo-run -f Modelfile" in lines
    assert f'TEMPLATE """{FORMATS["chatml"].ollama}"""' in text
    assert lines.count('PARAMETER stop "<|im_end|>"') == 1 and 'PARAMETER stop "</s>"' in lines
    assert "PARAMETER temperature 0" in lines and "SYSTEM" not in text
    assert "renders identically both ways" in text


def test_sampling_comes_from_the_generation_config():
    s = sampling_from_generation_config({"do_sample": True, "temperature": 0.6, "top_p": 0.9, "top_k": 20,
                                         "repetition_penalty": 1.05})
    assert (s.temperature, s.top_p, s.top_k, s.repeat_penalty) == (0.6, 0.9, 20, 1.05)
    assert sampling_from_generation_config({}).temperature == 0.7
    text = modelfile("a.gguf", run_name="r", translation=None, template_source="", stops=[], sampling=s,
                     raw_text=True)
    assert 'TEMPLATE """{{ .Prompt }}"""' in text and "PARAMETER top_k 20" in text
    assert ollama_name("My Run: v2!") == "my-run-v2"
