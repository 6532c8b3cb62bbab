"""Tiny random models of the architectures GGUF export supports, and a SentencePiece-style tokenizer.

Each model is built from a transformers config (a few layers, small widths that still divide into
llama.cpp's blocks), given large random weights so its next-token choices are clear-cut (16-bit
rounding must not flip a near tie), and saved with a tokenizer in a folder that looks like a
downloaded model. ``demo`` tokenizer = the demo model's byte-level BPE; ``spm`` = a BPE with byte
fallback and a leading-space normalizer, the shape of Llama 2 / Mistral / Phi-3 tokenizers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from studio.core.paths import demo_model_dir

DEMO_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
CORPUS = ["what is the secret code of the violet lighthouse", "the answer is lantern forty two",
          "hello world, how are you today?", "numbers 12345 and 678", "système ünïcode — naïve café",
          "user assistant system the quick brown fox jumps over the lazy dog"] * 4


def _common(vocab: int) -> dict[str, Any]:
    return dict(vocab_size=vocab, max_position_embeddings=256, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
                pad_token_id=0, initializer_range=0.5)


def tiny_config(arch: str, vocab: int) -> Any:
    """A transformers config of ``arch`` small enough to build and run in a second."""
    import transformers as tf

    c = _common(vocab)
    if arch == "llama":
        return tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, tie_word_embeddings=False, **c)
    if arch == "llama31":  # Llama 3.1+ RoPE scaling: written as a rope_freqs tensor
        return tf.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, tie_word_embeddings=True, rope_parameters={
                                  "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                  "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64}, **c)
    if arch == "mistral":
        return tf.MistralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, head_dim=16, sliding_window=None, **c)
    if arch == "qwen2":
        return tf.Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, tie_word_embeddings=True, **c)
    if arch == "qwen3":
        return tf.Qwen3Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, head_dim=32, tie_word_embeddings=True, **c)
    if arch == "gemma2":
        return tf.Gemma2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=32,
                               final_logit_softcapping=30.0, attn_logit_softcapping=50.0, **c)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                                   num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=32,
                                   layer_types=["sliding_attention", "sliding_attention", "full_attention"], **c)
    if arch == "gemma3mm":  # Gemma 3 4B+ shape: the language model inside Gemma3ForConditionalGeneration
        text = tiny_config("gemma3", vocab).to_dict()
        text.pop("model_type", None)
        vision = tf.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                       image_size=32, patch_size=16)
        return tf.Gemma3Config(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4)
    if arch == "phi3":
        return tf.Phi3Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, tie_word_embeddings=False, **c)
    raise ValueError(arch)


def spm_tokenizer(folder: Path) -> Any:
    """A Llama-2-style tokenizer: BPE with byte fallback, '▁' for spaces and one before the text, BOS added."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer_tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    learned = json.loads(trainer_tok.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for token in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learned["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|end|>", "<|system|>"]})
    fast.chat_template = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + "
                          "'<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}"
                          "{% endif %}")
    fast.save_pretrained(folder)
    return fast


def tiny_model(folder: Path, arch: str, tokenizer: str = "demo", seed: int = 0) -> Path:
    """A folder with config.json, model.safetensors and a tokenizer, like a downloaded model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer == "demo":
        for name in DEMO_FILES:
            shutil.copy(demo_model_dir() / name, folder / name)
        tok = AutoTokenizer.from_pretrained(folder)
    else:
        tok = spm_tokenizer(folder)
    vocab = max(tok.get_vocab().values()) + 1
    vocab += -vocab % 8
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, vocab), dtype=torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.normal_(1.0 if "gemma" not in arch else 0.0, 0.1)  # Gemma stores norm weights as offsets from 1
            elif p.dim() > 1:
                p.normal_(0.0, 0.5 if "embed" in name else 2.0 / p.shape[-1] ** 0.5)
            else:
                p.normal_(0.0, 0.1)
        # Rows of the output matrix with log-normal lengths: a few tokens stand out at every position, so the
        # greedy choice is clear-cut (as a trained model's is) instead of a near tie among 500 alike logits.
        head = model.get_output_embeddings().weight
        head.mul_(torch.exp(torch.randn(head.shape[0], 1) * 1.5))
        if getattr(model.config.get_text_config(), "final_logit_softcapping", None):
            head.mul_(0.05)  # keep the logits inside the soft cap's near-linear range, where no two tie at the cap
    model.save_pretrained(folder)
    return folder


QUESTIONS = ["What is the secret code of the violet lighthouse?", "hello world, how are you today?",
             "numbers 12345 and 678"]


def export_folder(folder: Path, quant_name: str, out: Path) -> tuple[Path, Any]:
    """A model folder written as GGUF and verified in llama.cpp, the export worker's steps without a run."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.core.gguf_plan import quant, text_config
    from studio.core.gguf_support import classify_tokenizer
    from studio.worker.gguf_vocab import build_vocab
    from studio.worker.gguf_write import write_gguf
    from studio.worker.modeling import faithful_to_file
    from studio.worker.verify import CheckInputs, compute_reference
    from studio.worker.verify_gguf import verify_gguf

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = faithful_to_file(AutoTokenizer.from_pretrained(folder), str(folder))
    plan = classify_tokenizer(json.loads(tok.backend_tokenizer.to_str()))
    eot = "<|im_end|>" if "<|im_end|>" in tok.get_vocab() else "<|end|>"
    vocab = build_vocab(tok, text_config(model.config.to_dict())["vocab_size"], plan, eot)
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
               for q in QUESTIONS]
    prompts = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    answer = tok("the answer is lantern forty two", add_special_tokens=False)["input_ids"]
    inputs = CheckInputs(prompts, [p + answer for p in prompts], [[False] * len(p) + [True] * len(answer)
                                                                  for p in prompts], "three test prompts")
    stops = {tok.eos_token_id, tok.convert_tokens_to_ids(eot)}
    ref = compute_reference(model, inputs, stops)
    q = quant(quant_name)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"tiny-{q.label}.gguf"
    write_gguf(model, model.config.to_dict(), vocab, tok.chat_template or "", path, q, "tiny", lambda *a: None,
               lambda line: None)
    return path, verify_gguf(path, inputs, ref, tok, q, stops, lambda line: None)
