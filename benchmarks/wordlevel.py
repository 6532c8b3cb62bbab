"""The benchmarks' tokenizer: word "w<id>" -> id, plus <unk>/<pad>/</s> as the vocabulary's last three ids.

Random-weight benchmark models have no real tokenizer; this one lets data files name exact token ids
in plain text, so every benchmark controls precisely how many tokens a row has.
"""

from __future__ import annotations

from pathlib import Path


def save_wordlevel_tokenizer(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {f"w{i}": i for i in range(vocab_size - 3)}
    words.update({"<unk>": vocab_size - 3, "<pad>": vocab_size - 2, "</s>": vocab_size - 1})
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                            eos_token="</s>").save_pretrained(out)
