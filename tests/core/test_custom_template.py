"""A custom chat template is one thing end to end: the config holds it, and preview, statistics, training and
chat render with it through the code the tokenizer's own template goes through (issue #15)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, make_tokenizer_dir, write_jsonl  # noqa: E402

from studio.core.chat_formats import run_chat_template, starting_template, translate  # noqa: E402
from studio.core.config import ConfigError, DataSpec, RunConfig, describe_validation_error  # noqa: E402
from studio.core.data import IGNORE_INDEX, load_preview, load_tokenizer, render_example, render_preview  # noqa: E402
from studio.core.data.render import render_prompt  # noqa: E402
from studio.core.modelfile import modelfile, sampling_from_generation_config  # noqa: E402

# A format no named template has: "### role:" headers, answers closed by EOS, BOS written by the template.
CUSTOM = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}### Answer: {{ m['content'] }}"
          "{{ eos_token }}\n{% else %}### {{ m['role'] }}: {{ m['content'] }}\n{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}### Answer: {% endif %}")
CONV = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is the capital"},
        {"role": "assistant", "content": "paris"}, {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "guten morgen"}]


@pytest.fixture(scope="module")
def base_tok(tmp_path_factory):
    """A base model's tokenizer: no chat template, BOS added to plain text."""
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("base"), chat_template=False, bos=True))


def custom_spec(**kw) -> DataSpec:
    return DataSpec(template="custom", chat_template=CUSTOM, **kw)


def loss_runs(tok, ex) -> list[str]:
    runs, cur = [], []
    for i, lab in zip(ex.input_ids, ex.labels):
        if lab != IGNORE_INDEX:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    return ["".join(tok.token_texts(r)) for r in runs + ([cur] if cur else [])]


# ---- the config -----------------------------------------------------------------------------------

def test_a_custom_template_is_kept_and_round_trips_as_a_readable_block(tmp_path):
    cfg = RunConfig().replace("data", custom_spec().model_dump())
    assert cfg.data.effective_template == CUSTOM
    path = tmp_path / "config.yaml"
    cfg.save(path)
    text = path.read_text()
    assert "chat_template: |" in text and "\\n" not in text.split("chat_template:")[1].split("train_on")[0]
    assert RunConfig.load(path) == cfg


def test_old_configs_keep_working_and_a_named_template_ignores_the_draft():
    data = RunConfig().to_dict()
    del data["data"]["chat_template"]  # written before custom templates existed
    data["data"]["template"] = "llama3"
    cfg = RunConfig.from_dict(data)
    assert cfg.data.template == "llama3" and cfg.data.chat_template == "" and cfg.data.effective_template == "llama3"
    # A draft kept beside a named template is not used (nor checked): choosing Custom again brings it back.
    drafted = cfg.replace("data.chat_template", "{{ broken")
    assert drafted.data.effective_template == "llama3"


def test_a_jinja_text_given_as_the_template_is_a_custom_one():
    cfg = RunConfig().replace("data.template", CUSTOM)
    assert cfg.data.template == "custom" and cfg.data.chat_template == CUSTOM


@pytest.mark.parametrize("template, problem", [
    ("", "write a Jinja chat template for 'custom'"),
    ("{% for m in messages %}{{ m['content'] }", "not valid jinja"),
    ("{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] }}{% endif %}{% endfor %}",
     "never prints the assistant's answers"),
    ("{% for m in messages %}{{ m['role'] }}{% endfor %}", "leaves out the text of some turns"),
    ("{{ raise_exception('no chats here') }}", "rejected this conversation: no chats here"),
])
def test_a_custom_template_that_cannot_train_is_refused_with_the_reason(template, problem):
    with pytest.raises(ValidationError) as e:
        RunConfig().replace("data", {"template": "custom", "chat_template": template})
    message = describe_validation_error(e.value)
    assert message.startswith("data.chat_template: ") and problem in message
    assert "the model's chat template" not in message  # it is the user's


def test_a_config_file_with_a_broken_template_names_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  template: custom\n  chat_template: '{% if %}'\n")
    with pytest.raises(ConfigError, match=r"data\.chat_template: the template is not valid jinja"):
        RunConfig.load(path)


def test_a_template_without_a_system_role_is_accepted():
    gemma_like = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not "
                  "supported') }}{% endif %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}"
                  "{% if add_generation_prompt %}<assistant>{% endif %}")
    assert DataSpec(template="custom", chat_template=gemma_like).chat_template == gemma_like


# ---- rendering ------------------------------------------------------------------------------------

def test_the_loss_is_exactly_on_the_answers(base_tok):
    ex = render_example(CONV, base_tok, template=CUSTOM, max_len=512)
    eos = base_tok.eos_token
    assert loss_runs(base_tok, ex) == [f"paris{eos}\n", f"guten morgen{eos}\n"]
    # The ids are the template's text tokenized: its BOS once (the tokenizer adds none of its own here).
    assert "".join(base_tok.token_texts(ex.input_ids)) == base_tok.with_chat_template(CUSTOM).apply_chat_template(CONV)
    assert ex.input_ids.count(base_tok.bos_token_id) == 1


def test_the_chat_prompt_is_the_training_example_up_to_the_answer(base_tok):
    ex = render_example(CONV, base_tok, template=CUSTOM, max_len=512)
    first = next(i for i, label in enumerate(ex.labels) if label != IGNORE_INDEX)
    prompt = render_prompt(CONV[:2], base_tok, CUSTOM)
    assert prompt.input_ids == ex.input_ids[:first] and prompt.text.endswith("### Answer: ")
    assert prompt.stop_texts == (base_tok.eos_token,)


@pytest.mark.parametrize("name", ["chatml", "alpaca", "llama3"])
def test_starting_from_a_named_template_trains_exactly_as_the_named_one(base_tok, name):
    start = starting_template(name, base_tok)
    assert start.startswith("{{ bos_token }}")  # this tokenizer adds BOS to plain text: the Jinja text writes it
    named, custom = render_example(CONV, base_tok, template=name), render_example(CONV, base_tok, template=start)
    assert (custom.input_ids, custom.labels) == (named.input_ids, named.labels)


def test_the_preview_renders_rows_with_the_custom_template(base_tok, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3))
    spec = custom_spec(source="file", path=str(f))
    rows = render_preview(load_preview(spec), spec, base_tok)
    pieces = rows[0].pieces
    assert pieces[0] == ("<s>### user: what is 0 plus one\n### Answer: ", False)
    assert pieces[1] == (f"1{base_tok.eos_token}\n", True)
    assert rows[0].n_loss == sum(1 for t, loss in rows[0].tokens if loss) > 0
    # Before the tokenizer is read, the same pieces with a stand-in EOS.
    assert render_preview(load_preview(spec), spec)[0].pieces[1] == ("1<eos>\n", True)


def test_statistics_tokenize_with_it_and_a_changed_template_re_tokenizes(base_tok, tmp_path, monkeypatch):
    import studio.core.data.pipeline as pipeline
    from studio.core.data.stats import compute_stats

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)  # the cached (datasets) path
    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(50))
    spec = custom_spec(source="file", path=str(f))
    first = pipeline.tokenize_dataset(spec, base_tok)
    assert first.template == "custom" and not first.from_cache
    row = first.dataset[0]
    conv = [{"role": "user", "content": "what is 0 plus one"}, {"role": "assistant", "content": "1"}]
    want = render_example(conv, base_tok, template=CUSTOM)
    assert (row["input_ids"], row["labels"]) == (want.input_ids, want.labels)
    assert compute_stats(spec, base_tok, max_len=64).template == "custom"
    assert pipeline.tokenize_dataset(spec, base_tok).from_cache
    changed = spec.model_copy(update={"chat_template": CUSTOM.replace("### Answer: ", "### Reply: ")})
    again = pipeline.tokenize_dataset(changed, base_tok)
    assert not again.from_cache and again.dataset[0]["input_ids"] != row["input_ids"]


# ---- export: the template as Jinja, and as Ollama's ----------------------------------------------

def test_the_run_template_is_the_custom_text_and_ollama_says_when_it_cannot_translate_it():
    template, source = run_chat_template(CUSTOM, "{{ the base's own }}")
    assert template == CUSTOM and source == "the run's custom chat template"
    translation = translate(template, bos_token="<s>", eos_token="</s>", adds_bos=True)
    assert not translation.exact
    text = modelfile("m.gguf", run_name="r", translation=translation, template_source=source, stops=["</s>"],
                     sampling=sampling_from_generation_config({}))
    assert "# WARNING: the chat template could not be translated exactly" in text
    assert "the run's custom chat template differs" in text


def test_a_custom_template_that_is_chatml_translates_exactly(base_tok):
    start = starting_template("chatml", base_tok)
    translation = translate(start, bos_token="<s>", eos_token="<|endoftext|>", adds_bos=True)
    assert translation.exact and translation.format.name == "chatml"
