"""Build the embedded demo: a tiny random-init Llama, its tokenizer, and a dataset it can learn.

Run from the repository root: ``python resources/build_demo.py``. Everything is made here from
fixed seeds, nothing is downloaded, and the output is byte-for-byte the same on every run, so the
committed files in ``resources/demo/`` can be rebuilt and diffed.

The dataset teaches a rule that is easy to check: every "secret code" is the object that belongs
to a place, a dash, and the number that belongs to a colour ("What is the secret code of the
violet lighthouse?" -> "lantern-42"). A random model cannot know it; after the demo's short LoRA
run (``studio.core.config.demo_config``) greedy generation answers most questions exactly.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "demo"
SEED = 1234

# Colour -> number and place -> object: the two halves of every answer.
COLOURS = {
    "violet": 42, "amber": 17, "crimson": 88, "teal": 23, "golden": 64, "silver": 39,
    "indigo": 75, "scarlet": 51, "emerald": 96, "ivory": 30, "copper": 58, "azure": 13,
}
PLACES = {
    "lighthouse": "lantern", "mill": "wheel", "harbor": "anchor", "tower": "bell",
    "garden": "rose", "bridge": "arch", "forest": "acorn", "library": "scroll",
    "castle": "crown", "market": "coin", "temple": "candle", "orchard": "apple",
    "observatory": "comet", "bakery": "bread", "workshop": "hammer", "cavern": "crystal",
    "meadow": "clover", "station": "ticket", "theater": "mask", "glacier": "frost",
}

SPECIALS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]

# ChatML, identical to studio.core.data.render.TEMPLATES["chatml"], so "auto" and "chatml" agree.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

MODEL_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=512)


def dataset_rows() -> list[dict[str, str]]:
    rows = []
    for colour, number in COLOURS.items():
        for place, thing in PLACES.items():
            rows.append({"instruction": f"What is the secret code of the {colour} {place}?",
                         "input": "", "output": f"{thing}-{number}"})
    return rows


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIALS["unk"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640, min_frequency=1, show_progress=False,
        special_tokens=[SPECIALS["pad"], SPECIALS["bos"], SPECIALS["eos"], SPECIALS["unk"], *CHAT_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIALS["bos"], eos_token=SPECIALS["eos"],
        pad_token=SPECIALS["pad"], unk_token=SPECIALS["unk"], additional_special_tokens=CHAT_TOKENS,
        model_max_length=MODEL_SHAPE["max_position_embeddings"], padding_side="right",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def training_texts(rows: list[dict[str, str]]) -> list[str]:
    """What the tokenizer learns its merges from: the rows in every template the studio renders."""
    texts = []
    for r in rows:
        texts.append(f"<|im_start|>user\n{r['instruction']}<|im_end|>\n<|im_start|>assistant\n{r['output']}<|im_end|>\n")
        texts.append(f"### Instruction:\n{r['instruction']}\n\n### Response:\n{r['output']}\n\n")
    texts.append("system user assistant Instruction Response You are a helpful assistant.")
    return texts


def build_model(tokenizer):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer), **MODEL_SHAPE, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rms_norm_eps=1e-6, rope_theta=10000.0,
        # LeCun-scale init (1/sqrt(hidden)): with the default 0.02 the frozen, tied output layer can
        # only reach logits of about +-1, so no adapter could ever make a confident prediction.
        initializer_range=MODEL_SHAPE["hidden_size"] ** -0.5,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")],
        do_sample=False, max_new_tokens=16,
    )
    return model


def build(out: Path = OUT) -> Path:
    rows = dataset_rows()
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    with open(out / "dataset.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tokenizer = build_tokenizer(training_texts(rows))
    model = build_model(tokenizer)
    model.save_pretrained(out / "model", safe_serialization=True)
    tokenizer.save_pretrained(out / "model")
    (out / "README.md").write_text(
        "# The studio's demo\n\n"
        "Built by `resources/build_demo.py` (fixed seeds, nothing downloaded); do not edit by hand.\n\n"
        f"- `model/`: a {MODEL_SHAPE['num_hidden_layers']}-layer Llama, hidden size {MODEL_SHAPE['hidden_size']}, "
        "random weights, with a byte-level BPE tokenizer and a ChatML chat template.\n"
        f"- `dataset.jsonl`: {len(rows)} alpaca rows. Each secret code is the object of a place, a dash and "
        "the number of a colour, e.g. the violet lighthouse -> lantern-42.\n",
        encoding="utf-8")
    return out


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"built {path} ({total / 1e6:.2f} MB)")
