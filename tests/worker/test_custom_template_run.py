"""A run with a custom chat template (issue #15): trained, chatted with and exported in that one template.

The demo trains 60 steps with its own format replaced by a plain "Q: / A:" template: the chat worker's
'As trained' prompt is the training example up to the answer, and the merged export's tokenizer, the
adapter export's tokenizer files and the GGUF's metadata all carry the template's text.
"""

from __future__ import annotations

import json
import re

import pytest
from test_resume import _config
from worker_helpers import demo_rows, make_run

from studio.core.data import IGNORE_INDEX
from studio.worker import train as train_module
from studio.worker.export import main as export_main
from studio.worker.reporter import Reporter

CUSTOM = ("{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n"
          "{% elif m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}\n"
          "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}")


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    cfg = _config(max_steps=60, save_steps=0, batch_size=16, learning_rate=3e-3)
    cfg = cfg.replace("data.chat_template", CUSTOM).replace("data.template", "custom")
    run = make_run(tmp_path_factory.mktemp("custom"), cfg)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)
        assert train_module.main(run.path) == 0, run.log_tail(30)
    return run


def _first_row(cfg, tokenizer):
    """The demo's first row as the worker's data pipeline tokenized it for training."""
    from studio.core.data.pipeline import tokenize_dataset

    table = tokenize_dataset(cfg.data, tokenizer).dataset.data
    return table.column("input_ids")[0].as_py(), table.column("labels")[0].as_py()


def test_the_run_trained_with_the_custom_template(custom_run):
    from studio.worker.modeling import load_tokenizer

    cfg = custom_run.config()
    assert cfg.data.template == "custom" and cfg.data.chat_template == CUSTOM
    tokenizer = load_tokenizer(cfg)
    ids, labels = _first_row(cfg, tokenizer)
    row = demo_rows()[0]
    assert tokenizer.decode(ids) == f"Q: {row['instruction']}\nA: {row['output']}</s>\n"
    learned = [i for i, label in zip(ids, labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(learned) == f"{row['output']}</s>\n"  # the loss is on the answer and its end only
    plan = next(e for e in custom_run.events() if e["type"] == "plan")
    assert plan["data"]["stats"]["template"] == "custom"


def test_the_chat_worker_asks_in_the_trained_template_and_answers_in_it(custom_run):
    from studio.core.data.render import render_prompt
    from test_chat_session import Events, _generate

    from studio.worker.chat import ChatSession

    rep = Events()
    session = ChatSession.load(rep, run_dir=str(custom_run.path))
    session.announce(0.1)
    assert session.template == CUSTOM and rep.of("ready")[0]["template"] == "custom"
    row = demo_rows()[0]
    conv = [{"role": "user", "content": row["instruction"]}]
    prompt = render_prompt(conv, session.loaded.tokenizer, session.template, session.train_on)  # what 'auto' sends
    ids, labels = _first_row(custom_run.config(), session.loaded.tokenizer)
    first = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    assert prompt.input_ids == ids[:first] and prompt.text.endswith("\nA: ")
    command = _generate("q", sides=["tuned"])
    command["messages"] = conv
    session.handle(command)
    reply = rep.of("reply")[-1]
    assert reply["prompt_tokens"] == first
    # 60 steps teach the format: a code-shaped answer, ended where the template ends an answer
    assert re.fullmatch(r"[a-z]+-\d+", reply["text"]) and reply["stop_reason"] == "end"


def test_the_merged_export_tokenizer_carries_the_template(custom_run, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "merged"
    assert export_main(custom_run.path, "merged", out) == 0
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.chat_template == CUSTOM
    question = demo_rows()[0]["instruction"]
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         tokenize=False)
    assert text == f"Q: {question}\nA: "
    assert json.loads((out / "verification.json").read_text())["passed"]


def test_the_adapter_export_tokenizer_files_carry_the_template(custom_run, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "adapter"
    assert export_main(custom_run.path, "adapter", out, verify=False) == 0
    assert (out / "chat_template.jinja").read_text(encoding="utf-8") == CUSTOM
    assert "chat_template" not in json.loads((out / "tokenizer_config.json").read_text())
    assert AutoTokenizer.from_pretrained(str(out)).chat_template == CUSTOM


def test_the_gguf_carries_the_template_and_the_modelfile_says_it_is_not_translated(custom_run, tmp_path):
    import gguf

    out = tmp_path / "gguf"
    assert export_main(custom_run.path, "gguf", out, quant="f16", verify=False) == 0
    reader = gguf.GGUFReader(str(out / "demo-F16.gguf"))
    field = reader.fields["tokenizer.chat_template"]
    assert bytes(field.parts[field.data[0]]).decode("utf-8") == CUSTOM
    modelfile = (out / "Modelfile").read_text()
    assert "could not be translated exactly" in modelfile and "the run's custom chat template differs" in modelfile


def test_a_named_template_run_exports_that_template_with_the_bos_training_put_first():
    from transformers import AutoTokenizer

    from studio.core.chat_formats import named_jinja
    from studio.core.config import demo_config
    from studio.core.paths import demo_model_dir
    from studio.worker.merging import run_template

    tokenizer = AutoTokenizer.from_pretrained(str(demo_model_dir()))
    assert run_template(tokenizer, demo_config()) is None  # 'auto' on a model with a template: its own
    alpaca = run_template(tokenizer, demo_config().replace("data.template", "alpaca"))
    adds_bos = tokenizer("a")["input_ids"][0] == tokenizer.bos_token_id
    assert alpaca == ("{{ bos_token }}" if adds_bos else "") + named_jinja("alpaca")
    assert run_template(tokenizer, demo_config().replace("data.format", "text")) is None
