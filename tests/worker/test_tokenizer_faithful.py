"""The worker trains on the tokens the folder's tokenizer.json gives, whatever class transformers picks.

transformers 5 rebuilds a qwen2 folder's tokenizer as byte-level BPE from the file's vocabulary; a
custom tokenizer.json (here a word-level one) then encoded "w5 w7 ..." to nothing, and the worker
trained on one EOS token per row while the data page previewed every word.
"""

import json

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from studio.core.config import RunConfig
from studio.core.data.tokenizer import load_tokenizer as preview_tokenizer
from studio.worker.modeling import load_tokenizer

VOCAB = 300


def _folder(tmp_path, model_type: str):
    d = tmp_path / model_type
    words = {f"w{i}": i for i in range(VOCAB - 3)}
    words.update({"<unk>": VOCAB - 3, "<pad>": VOCAB - 2, "</s>": VOCAB - 1})
    tok = Tokenizer(models.WordLevel(words, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                            eos_token="</s>").save_pretrained(d)
    (d / "config.json").write_text(json.dumps({
        "model_type": model_type, "architectures": ["X"], "vocab_size": VOCAB, "hidden_size": 8,
        "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1}))
    return d


def _cfg(d) -> RunConfig:
    return RunConfig.from_dict({"model": {"source": "local", "path": str(d)}})


def test_qwen2_folder_with_custom_tokenizer_trains_on_the_files_tokens(tmp_path):
    d = _folder(tmp_path, "qwen2")
    text = " ".join(f"w{i}" for i in range(0, 290, 7))
    tok = load_tokenizer(_cfg(d))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids == [int(w[1:]) for w in text.split()]
    assert ids == preview_tokenizer(d).encode(text)  # what the data page shows is what trains
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>"
    assert tok.eos_token_id == VOCAB - 1 and tok.pad_token_id == VOCAB - 2


def test_a_tokenizer_that_already_agrees_is_kept(tmp_path):
    d = _folder(tmp_path, "llama")
    tok = load_tokenizer(_cfg(d))
    assert tok("w1 w2", add_special_tokens=False)["input_ids"] == [1, 2]
