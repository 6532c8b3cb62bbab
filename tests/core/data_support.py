"""Helpers for the data tests: a tiny real tokenizer (BPE, built in milliseconds) and file writers."""

from __future__ import annotations

import json
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>"]
CORPUS = ["the quick brown fox jumps over the lazy dog", "what is the capital of france", "paris is the capital",
          "hello world", "translate to german: good morning", "guten morgen", "one two three four five six",
          "system user assistant instruction input output response question answer"]


def make_tokenizer_dir(folder: Path, chat_template: bool = True, bos: bool = False) -> Path:
    """A model folder with tokenizer.json (+ config, optional chat template), no model weights."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {"eos_token": "<|im_end|>" if chat_template else "<|endoftext|>", "pad_token": "<|endoftext|>"}
    if bos:
        config["bos_token"] = "<s>"
    if chat_template:
        config["chat_template"] = CHATML_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def alpaca_rows(n: int) -> list[dict]:
    return [{"instruction": f"what is {i} plus one", "input": "", "output": f"{i + 1}"} for i in range(n)]
