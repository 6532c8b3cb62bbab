"""One template for preview, training and chat: the chat prompt is the training example up to the answer.

Also the chat template a user types (names, Jinja) and the chat worker's stdin commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_support import make_tokenizer_dir  # noqa: E402

from studio.core.chat import (CommandError, Sampling, command_line, conversation_for, parse_command,  # noqa: E402
                              with_system)
from studio.core.data import IGNORE_INDEX, DataError, load_tokenizer, render_example  # noqa: E402
from studio.core.data.render import check_template, render_prompt  # noqa: E402

CONV = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is the capital"},
        {"role": "assistant", "content": "paris"}, {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "guten morgen"}]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def base_tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("base"), chat_template=False, bos=True))


def _answer_starts(example) -> list[int]:
    labels = example.labels
    return [i for i, label in enumerate(labels) if label != IGNORE_INDEX and (i == 0 or labels[i - 1] == IGNORE_INDEX)]


def _assert_prompts_match_training(conv, tokenizer, template, train_on="completion"):
    example = render_example(conv, tokenizer, template=template, max_len=4096)
    answers = [i for i, turn in enumerate(conv) if turn["role"] == "assistant"]
    reference = render_example(conv, tokenizer, template=template, train_on="completion", max_len=4096)
    for turn, start in zip(answers, _answer_starts(reference)):
        prompt = render_prompt(conv[:turn], tokenizer, template, train_on)
        assert prompt.input_ids == example.input_ids[:start], (template, turn)
    return prompt


@pytest.mark.parametrize("template", ["auto", "chatml", "alpaca", "llama3"])
def test_the_prompt_is_the_training_example_up_to_each_answer(tok, base_tok, template):
    tokenizer = tok if template == "auto" else base_tok
    prompt = _assert_prompts_match_training(CONV, tokenizer, template)
    assert prompt.template == ("tokenizer" if template == "auto" else template)


def test_a_base_model_without_template_falls_back_to_chatml(base_tok):
    auto = render_prompt(CONV[:2], base_tok, "auto")
    assert auto.template == "chatml" and auto.input_ids == render_prompt(CONV[:2], base_tok, "chatml").input_ids
    assert auto.input_ids[0] == base_tok.bos_token_id  # the BOS training puts in front
    assert auto.text.endswith("<|im_start|>assistant\n")


def test_the_demo_prompt_matches_its_training_rendering():
    from studio.core.paths import demo_dataset_path, demo_model_dir

    tokenizer = load_tokenizer(demo_model_dir())
    row = json.loads(demo_dataset_path().read_text().splitlines()[0])
    conv = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
    prompt = _assert_prompts_match_training(conv, tokenizer, "auto")
    assert prompt.text == f"<|im_start|>user\n{row['instruction']}<|im_end|>\n<|im_start|>assistant\n"
    assert prompt.stop_texts == ("<|im_end|>", "</s>")


def test_the_worker_tokenizer_gives_the_same_prompt_as_the_preview_tokenizer():
    from transformers import AutoTokenizer

    from studio.core.paths import demo_model_dir

    hf = AutoTokenizer.from_pretrained(str(demo_model_dir()))
    ours = load_tokenizer(demo_model_dir())
    assert render_prompt(CONV[:4], hf).input_ids == render_prompt(CONV[:4], ours).input_ids
    _assert_prompts_match_training(CONV, hf, "auto")


def test_training_on_everything_still_matches(tok):
    _assert_prompts_match_training(CONV, tok, "auto", train_on="all")


def test_raw_text_is_continued_as_it_is(base_tok):
    prompt = render_prompt([{"role": "text", "content": "hello world"}], base_tok, "chatml")
    assert prompt.text == "hello world" and prompt.stop_texts == ()
    assert prompt.input_ids == render_example([{"role": "text", "content": "hello world"}], base_tok,
                                              template="chatml", add_eos=False).input_ids


def test_a_custom_jinja_template_for_a_base_model(base_tok):
    template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}[assistant] {% endif %}")
    assert check_template(template, base_tok) == ""
    prompt = render_prompt(CONV[:4], base_tok, template)
    assert prompt.template == "tokenizer"
    assert prompt.text == ("[system] be brief\n[user] what is the capital\n[assistant] paris\n[user] hello world\n"
                           "[assistant] ")


@pytest.mark.parametrize("template, problem", [
    ("", "empty"),
    ("mistral", "unknown chat template 'mistral'"),
    ("{% for m in messages %}{{ m['content'] }", "not valid jinja"),
    ("{% for m in messages %}{{ m['role'] }}{% endfor %}", "leaves out the text of some turns"),
    ("{{ raise_exception('no') }}", "rejected this conversation: no"),
])
def test_a_template_that_cannot_render_chats_is_refused(template, problem):
    assert problem in check_template(template)


def test_a_prompt_must_end_with_the_user(tok):
    with pytest.raises(DataError, match="ends with the user's turn"):
        render_prompt(CONV, tok)
    with pytest.raises(DataError, match="unknown role 'robot'"):
        render_prompt([{"role": "robot", "content": "x"}, {"role": "user", "content": "y"}], tok)


def test_system_prompt_goes_first_and_replaces_one():
    conv = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert with_system(conv, "new") == [{"role": "system", "content": "new"}, {"role": "user", "content": "hi"}]
    assert with_system(conv[1:], None) == conv[1:]


# ---- the chat worker's commands -------------------------------------------------------------------

def test_a_generate_command_round_trips_with_its_sampling():
    line = command_line("generate", id=7, messages=CONV[:2], sides=["tuned"],
                        sampling=Sampling(greedy=False, temperature=0.5, seed=3))
    command = parse_command(line)
    assert command["id"] == "7" and command["sides"] == ["tuned"]
    assert conversation_for(command, "tuned") == CONV[:2]
    assert command["sampling"].temperature == 0.5 and not command["sampling"].greedy
    every = parse_command(json.dumps({"cmd": "generate", "id": "1", "messages": CONV[:2]}))
    assert every["sides"] is None and every["sampling"] == Sampling()  # None: every side the worker has


def test_each_side_may_have_its_own_history():
    base_history = CONV[:2]
    tuned_history = CONV[:4]
    command = parse_command(json.dumps({"cmd": "generate", "id": "1",
                                        "messages": {"base": base_history, "tuned": tuned_history}}))
    assert conversation_for(command, "base") == base_history and conversation_for(command, "tuned") == tuned_history
    with pytest.raises(CommandError, match="no conversation for tuned"):
        parse_command(json.dumps({"cmd": "generate", "id": "1", "sides": ["tuned"],
                                  "messages": {"base": base_history}}))


@pytest.mark.parametrize("line, problem", [
    ("hello", "not a JSON command"),
    ('["generate"]', 'a command is a JSON object with "cmd"'),
    ('{"cmd": "jump"}', "unknown command 'jump'"),
    ('{"cmd": "generate", "id": "1"}', "missing messages"),
    ('{"cmd": "quit", "now": true}', "unknown field now"),
    ('{"cmd": "generate", "id": "1", "messages": [{"role": "user"}]}', "messages for base must be"),
    ('{"cmd": "generate", "id": "1", "messages": {"left": []}}', "messages has no side 'left'"),
    ('{"cmd": "generate", "id": "1", "messages": [], "sides": ["left"]}', "sides must be a list of base and tuned"),
    ('{"cmd": "generate", "id": "1", "messages": [{"role": "user", "content": "x"}], "sampling": {"top_p": 2}}',
     "sampling.top_p"),
    ('{"cmd": "generate", "id": "1", "messages": [{"role": "user", "content": "x"}], "sampling": {"beam": 2}}',
     "sampling.beam"),
    ('{"cmd": "load_adapter", "name": "x"}', "missing path"),
])
def test_bad_commands_say_what_is_wrong(line, problem):
    with pytest.raises(CommandError, match=problem.replace("(", r"\(").replace("[", r"\[")):
        parse_command(line)
