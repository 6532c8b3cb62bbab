"""Whether a run can be exported to GGUF, and if not why, before any work (no torch, no Qt).

``gguf_offer(cfg, trained_dir)`` is what the Export page and ``studio export --kind gguf`` ask:
it reads the method's ``mergeable`` flag, the base model's config.json and the tokenizer.json
the run trained with, and returns an ``Offer`` whose ``reason`` names what is supported when the
answer is no. ``ARCHITECTURES`` maps transformers' ``model_type`` to llama.cpp's architecture;
``classify_tokenizer`` says how a tokenizer.json is written into the file (llama.cpp's "gpt2"
byte-level BPE with a named pre-tokenizer, or its "llama" SentencePiece-style vocabulary) or why
llama.cpp could not tokenize like it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from studio.core.gguf_plan import Estimate, estimate, rope_parameters, text_config, vocab_bytes


@dataclass(frozen=True)
class Architecture:
    gguf_arch: str  # llama.cpp's name
    title: str


ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("llama", "Llama 2 / 3.x (and the demo model)"),
    "mistral": Architecture("llama", "Mistral"),
    "qwen2": Architecture("qwen2", "Qwen 2 / 2.5"),
    "qwen3": Architecture("qwen3", "Qwen 3"),
    "gemma2": Architecture("gemma2", "Gemma 2"),
    "gemma3_text": Architecture("gemma3", "Gemma 3 (text)"),
    "gemma3": Architecture("gemma3", "Gemma 3 (the language model; the vision tower is left out)"),
    "phi3": Architecture("phi3", "Phi-3 / 3.5 / 4"),
}
SUPPORTED_TEXT = ("Llama 2/3.x (and the demo model), Mistral, Qwen 2/2.5, Qwen 3, Gemma 2, Gemma 3 "
                  "and Phi-3/3.5/4")
TOKENIZERS_TEXT = ("byte-level BPE (GPT-2, Llama 3, Qwen, Phi-4 style) and SentencePiece-style BPE with byte "
                   "fallback (Llama 2, Mistral, Gemma, Phi-3 style), from a tokenizer.json")
_ROPE_TYPES = ("default", "linear", "llama3", "yarn", "longrope", "su")

# Byte-level BPE split patterns (tokenizer.json's Split regex) -> llama.cpp's pre-tokenizer name.
_GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZERS = {_GPT2_REGEX: "gpt-2", _LLAMA3_REGEX: "llama-bpe", _QWEN2_REGEX: "qwen2"}


@dataclass(frozen=True)
class TokenizerPlan:
    model: str  # llama.cpp's tokenizer.ggml.model: "gpt2" or "llama"
    pre: str  # tokenizer.ggml.pre
    add_space_prefix: bool = False  # "llama" vocabularies: a space before the first word
    problem: str = ""


def classify_tokenizer(tj: dict[str, Any]) -> TokenizerPlan:
    """How llama.cpp can tokenize exactly like this tokenizer.json, or ``problem`` saying why not."""
    model = tj.get("model") or {}
    mtype = model.get("type")
    if mtype != "BPE":
        return TokenizerPlan("", "", problem=f"its tokenizer is a {mtype or 'unknown'} model; GGUF export supports "
                                             f"{TOKENIZERS_TEXT}")
    pre = tj.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre] if pre else []
    kinds = [p.get("type") for p in parts]
    if model.get("byte_fallback"):
        norm = tj.get("normalizer") or {}
        norms = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm] if norm else []
        odd = [str(k) for k in kinds if k not in ("Metaspace", "Split")]
        if odd:
            return TokenizerPlan("", "", problem="its SentencePiece-style tokenizer splits text in a way llama.cpp "
                                                 f"does not ({', '.join(odd)}); GGUF export supports {TOKENIZERS_TEXT}")
        meta = [p for p in parts if p.get("type") == "Metaspace"]
        scheme = meta[0].get("prepend_scheme", "always") if meta else ""
        prepend = any(n.get("type") == "Prepend" for n in norms) or scheme in ("first", "always") or bool(
            meta and meta[0].get("add_prefix_space"))
        return TokenizerPlan("llama", "default", add_space_prefix=prepend)
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return TokenizerPlan("", "", problem="its BPE marks word pieces with a prefix or suffix, which llama.cpp "
                                             f"does not read; GGUF export supports {TOKENIZERS_TEXT}")
    if tj.get("normalizer"):
        return TokenizerPlan("", "", problem="its byte-level BPE normalizes text first "
                                             f"({tj['normalizer'].get('type')}), which llama.cpp would not do")
    byte_level = [p for p in parts if p.get("type") == "ByteLevel"]
    splits = [p for p in parts if p.get("type") == "Split"]
    if not byte_level:
        return TokenizerPlan("", "", problem=f"its pre-tokenizer ({', '.join(map(str, kinds)) or 'none'}) is not "
                                             f"byte-level; GGUF export supports {TOKENIZERS_TEXT}")
    if byte_level[0].get("add_prefix_space"):
        return TokenizerPlan("", "", problem="its byte-level BPE adds a space before the text, which llama.cpp "
                                             "does not")
    if not splits and byte_level[0].get("use_regex", True):
        return TokenizerPlan("gpt2", "gpt-2")
    if len(splits) == 1 and len(parts) == 2 and not byte_level[0].get("use_regex", True):
        regex = (splits[0].get("pattern") or {}).get("Regex", "")
        name = PRE_TOKENIZERS.get(regex)
        if name == "llama-bpe" and not model.get("ignore_merges"):
            name = "dbrx"  # the same split, with llama.cpp applying the merges as written
        if name:
            return TokenizerPlan("gpt2", name)
    return TokenizerPlan("", "", problem="its byte-level BPE splits text with a pattern llama.cpp does not know "
                                         "(supported: the GPT-2, Llama 3 / Phi-4 and Qwen 2/3 patterns)")


def architecture_problem(config: dict[str, Any]) -> str:
    """'' when llama.cpp runs this architecture the way transformers does, else why not."""
    mt = config.get("model_type", "")
    arch = ARCHITECTURES.get(mt)
    if arch is None:
        name = (config.get("architectures") or [mt or "unknown"])[0]
        return f"GGUF export supports {SUPPORTED_TEXT}; this model is {name} (model_type {mt or '?'})."
    c = text_config(config)
    rope = rope_parameters(c)
    rope_type = rope.get("rope_type", "default")
    if rope_type not in _ROPE_TYPES:
        return f"its RoPE scaling '{rope_type}' has no llama.cpp equivalent the studio writes (it writes " \
               f"{', '.join(_ROPE_TYPES)})."
    if mt.startswith("gemma"):
        hd = int(c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"])
        scalar = c.get("query_pre_attn_scalar", hd)
        big = c["num_hidden_layers"] in (46, 62)  # the 27B models, where llama.cpp scales by hidden/heads
        expected = c["hidden_size"] // c["num_attention_heads"] if big else hd
        if scalar != expected:
            return (f"llama.cpp scales {arch.title} attention by 1/sqrt({expected}), this model by "
                    f"1/sqrt({scalar}); its answers would differ.")
    if c.get("num_local_experts") or c.get("num_experts"):
        return "mixture-of-experts models are not exported to GGUF by the studio."
    return ""


def method_problem(method: Any) -> str:
    """'' when the method's training can be folded into the base weights, which a GGUF file needs."""
    info = type(method).info
    if info.mergeable:
        return ""
    return (f"GGUF holds one plain model, and {info.title} cannot be merged into the base model: "
            f"{info.merge_note or 'its weights are not a change of the base weights'}. Export the adapter instead "
            "(GGUF is offered for the methods that merge: LoRA and its variants, IA3, full and freeze tuning).")


def model_folder(cfg: Any) -> Optional[Path]:
    """The base model's folder on this machine: the demo, a local folder, or the hub cache (None if absent)."""
    if cfg.model.source == "demo":
        from studio.core.paths import demo_model_dir

        return demo_model_dir()
    path = Path(cfg.model.path).expanduser()
    if cfg.model.source == "local" or path.is_dir():
        return path if path.is_dir() else None
    from studio.core.models import find_in_hf_cache

    return find_in_hf_cache(cfg.model.path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Offer:
    ok: bool
    reason: str  # why not (names what is supported); '' when ok
    arch: str = ""  # llama.cpp architecture
    tokenizer: Optional[TokenizerPlan] = None
    config: Optional[dict[str, Any]] = None  # the base model's config.json
    tokenizer_dir: Optional[Path] = None  # where the tokenizer.json it read lies


def gguf_offer(cfg: Any, trained_dir: Optional[Path] = None) -> Offer:
    """Can this run be exported to GGUF? Reads files only: cheap enough for a page refresh."""
    problem = method_problem(cfg.method)
    if problem:
        return Offer(False, problem)
    folder = model_folder(cfg)
    if folder is None or not (folder / "config.json").is_file():
        return Offer(False, f"the base model {cfg.model.path or 'demo'} is not on this machine (GGUF export reads "
                            "its config.json and weights); download it first.")
    config = read_json(folder / "config.json")
    problem = architecture_problem(config)
    if problem:
        return Offer(False, _sentence(problem), config=config)
    tok_dir = trained_dir if trained_dir is not None and (Path(trained_dir) / "tokenizer.json").is_file() else folder
    tj = read_json(Path(tok_dir) / "tokenizer.json")
    if not tj:
        return Offer(False, f"there is no readable tokenizer.json in {tok_dir}; GGUF export supports "
                            f"{TOKENIZERS_TEXT}.", config=config)
    plan = classify_tokenizer(tj)
    if plan.problem:
        return Offer(False, _sentence(plan.problem), config=config)
    return Offer(True, "", ARCHITECTURES[config["model_type"]].gguf_arch, plan, config, Path(tok_dir))


def gguf_estimate(cfg: Any, offer: Offer, quant_name: str, verify: bool = True) -> Estimate:
    """Size and time of exporting this run (an ``ok`` offer) as ``quant_name``, from its files alone."""
    folder = model_folder(cfg)
    source = sum(p.stat().st_size for p in folder.glob("*.safetensors")) if folder else 0
    tok_dir = offer.tokenizer_dir or folder
    tj = read_json(tok_dir / "tokenizer.json") if tok_dir else {}
    template = cfg.data.chat_template if cfg.data.template == "custom" else ""
    if not template and tok_dir is not None and (tok_dir / "chat_template.jinja").is_file():
        template = (tok_dir / "chat_template.jinja").read_text(encoding="utf-8", errors="replace")
    return estimate(offer.config or {}, quant_name, source_bytes=source or None,
                    vocab_bytes=vocab_bytes(tj, template, int(text_config(offer.config or {}).get("vocab_size", 0)))
                    if tj else 0, verify=verify)


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
