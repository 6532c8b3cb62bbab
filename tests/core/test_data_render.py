"""Rendering and the loss mask: exact for fallback templates and for the model's own chat template."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_support import make_tokenizer_dir  # noqa: E402

from studio.core.data import IGNORE_INDEX, load_tokenizer, render_example  # noqa: E402
from studio.core.data.render import segments  # noqa: E402

CONV = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is the capital"},
        {"role": "assistant", "content": "paris"}, {"role": "user", "content": "hello world"},
        {"role": "assistant", "content": "guten morgen"}]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("tok")))


@pytest.fixture(scope="module")
def base_tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("base"), chat_template=False, bos=True))


def loss_text(tok, ex) -> list[str]:
    """The loss-carrying tokens decoded, as contiguous runs."""
    runs, cur = [], []
    for i, lab in zip(ex.input_ids, ex.labels):
        if lab != IGNORE_INDEX:
            assert lab == i
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return ["".join(tok.token_texts(r)) for r in runs]


def test_chat_template_mask_covers_exactly_the_answers(tok):
    ex = render_example(CONV, tok, template="auto", max_len=512)
    assert loss_text(tok, ex) == ["paris<|im_end|>\n", "guten morgen<|im_end|>\n"]
    # The ids are the template's text tokenized, nothing added or lost.
    assert "".join(tok.token_texts(ex.input_ids)) == tok.apply_chat_template(CONV)


def test_train_on_everything(tok):
    ex = render_example(CONV, tok, template="auto", train_on="all", max_len=512)
    assert ex.labels == ex.input_ids


def test_fallback_templates_and_explicit_eos(base_tok):
    ex = render_example(CONV, base_tok, template="alpaca", max_len=512)
    assert ex.input_ids[0] == base_tok.bos_token_id and ex.labels[0] == IGNORE_INDEX  # BOS like the tokenizer adds
    assert loss_text(base_tok, ex) == ["paris\n\n", "guten morgen\n\n<|endoftext|>"]
    no_eos = render_example(CONV, base_tok, template="chatml", add_eos=False, max_len=512)
    assert loss_text(base_tok, no_eos)[-1] == "guten morgen<|im_end|>\n"
    # 'auto' without a chat template falls back to ChatML.
    assert render_example(CONV, base_tok, template="auto", max_len=512).input_ids == \
        render_example(CONV, base_tok, template="chatml", max_len=512).input_ids


def test_eos_is_not_doubled_when_the_template_ends_with_it(tok):
    ex = render_example(CONV, tok, template="auto", max_len=512)
    assert tok.token_texts(ex.input_ids).count("<|im_end|>") == 5


def test_raw_text_trains_on_everything_and_ends_with_eos(base_tok):
    ex = render_example([{"role": "text", "content": "hello world"}], base_tok, template="chatml", max_len=512)
    assert loss_text(base_tok, ex) == ["hello world<|endoftext|>"]


def test_truncation_flag(tok):
    ex = render_example(CONV, tok, template="auto", max_len=10)
    assert ex.truncated and len(ex.input_ids) == 10


def test_templates_that_rerender_earlier_turns_still_mask_answers(tmp_path):
    # This template prints the turn count first, so prefixes never line up: the answers are searched for.
    d = make_tokenizer_dir(tmp_path / "odd")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{{ messages|length }}|{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                            "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    tok = load_tokenizer(d)
    pieces = segments(CONV, "tokenizer", "completion", tok.eos_token, tok)
    assert [t for t, loss in pieces if loss] == ["paris", "guten morgen"]


def test_template_errors_are_data_errors(tmp_path):
    from studio.core.data import DataError

    d = make_tokenizer_dir(tmp_path / "strict")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}x"
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="rejected this conversation: no system role"):
        render_example(CONV, load_tokenizer(d), template="auto")


def test_same_tokens_as_transformers_apply_chat_template(tmp_path):
    """The GUI's tokenizer (tokenizers + jinja) and the worker's (transformers) agree token for token."""
    from transformers import PreTrainedTokenizerFast

    d = make_tokenizer_dir(tmp_path / "tk")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), eos_token="<|im_end|>")
    hf.chat_template = json.loads((d / "tokenizer_config.json").read_text())["chat_template"]
    ours = render_example(CONV, load_tokenizer(d), template="auto", add_eos=False, max_len=512)
    theirs_hf = render_example(CONV, hf, template="auto", add_eos=False, max_len=512)
    reference = hf.apply_chat_template(CONV, tokenize=True)
    reference = reference["input_ids"] if isinstance(reference, dict) or hasattr(reference, "keys") else reference
    assert ours.input_ids == theirs_hf.input_ids == list(reference)
    assert ours.labels == theirs_hf.labels
