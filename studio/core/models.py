"""Model facts without loading weights: local folders, the Hugging Face cache, the bundled catalog.

``inspect_model(path)`` reads ``config.json`` (and the safetensors headers, never the tensors) and
returns a ``ModelFacts``: the architecture numbers the VRAM estimator and the method page need,
the parameter count (by formula from the config and, when safetensors files are present, exactly
from the tensor shapes), the size on disk, the names of the linear modules adapters can target
and whether the tokenizer ships a chat template. ``scan_hf_cache`` lists the models in the hub
cache; ``catalog_facts`` gives facts for popular public models from configs bundled in
``resources/catalog`` so estimates work offline for models the user has not downloaded.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Optional

from studio.core.paths import resources_dir

# A safetensors header is a JSON object; refuse absurd lengths rather than read a corrupt file.
_MAX_HEADER_BYTES = 100 * 1024 * 1024

_BYTES_PER_DTYPE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}


class ModelError(ValueError):
    """A model folder or id the studio cannot use; the message says what to do instead."""


@dataclass(frozen=True)
class LinearShape:
    """One kind of linear layer inside a decoder block: ``count`` copies per layer (MoE experts)."""

    name: str
    in_features: int
    out_features: int
    count: int = 1

    @property
    def params(self) -> int:
        return self.in_features * self.out_features * self.count


@dataclass(frozen=True)
class ModelFacts:
    """What the studio knows about a model from its files, without loading any weights."""

    path: str
    name: str
    architecture: str
    model_type: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    torch_dtype: str
    params_from_config: int
    params_exact: Optional[int] = None  # from safetensors shapes, when the weights are there
    size_on_disk: int = 0
    linear_shapes: tuple[LinearShape, ...] = ()  # nn.Linear modules of a decoder layer (adapter targets)
    expert_shapes: tuple[LinearShape, ...] = ()  # MoE experts (transformers 5 fuses them: not nn.Linear)
    has_chat_template: bool = False
    has_weights: bool = False
    hub_id: Optional[str] = None
    multimodal: bool = False  # facts describe the text model inside a multimodal config
    num_experts: int = 0  # mixture-of-experts: experts per layer (0 = dense)
    experts_per_token: int = 0
    norms_per_layer: int = 2
    attention_bias: bool = False
    final_logit_softcapping: Optional[float] = None
    weight_dtypes: tuple[str, ...] = ()  # safetensors dtypes seen (e.g. ("BF16",))
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_params(self) -> int:
        """The best parameter count available: exact from the weights, else by formula."""
        return self.params_exact if self.params_exact else self.params_from_config

    @property
    def linear_modules(self) -> tuple[str, ...]:
        """Names of the decoder block's linear modules (what LoRA's target_modules lists)."""
        return tuple(s.name for s in self.linear_shapes)

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def layer_linear_params(self) -> int:
        return sum(s.params for s in self.linear_shapes)

    @property
    def layer_expert_params(self) -> int:
        return sum(s.params for s in self.expert_shapes)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["linear_shapes"] = [vars(s) for s in self.linear_shapes]
        d["expert_shapes"] = [vars(s) for s in self.expert_shapes]
        d["linear_modules"] = list(self.linear_modules)
        d["num_params"] = self.num_params
        return d


# ---- reading config.json ----------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); the download may be incomplete") from e
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _text_config(cfg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The language-model part of a config: nested ``text_config`` for Gemma 3 / multimodal models."""
    for key in ("text_config", "llm_config", "language_config"):
        sub = cfg.get(key)
        if isinstance(sub, dict) and sub.get("hidden_size"):
            merged = dict(sub)
            # Some wrappers keep these at the top level only.
            for k in ("tie_word_embeddings", "torch_dtype", "dtype"):
                if k not in merged and k in cfg:
                    merged[k] = cfg[k]
            return merged, True
    return cfg, False


def _first(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        v = cfg.get(k)
        if v is not None:
            return v
    return default


def facts_from_config(cfg: dict[str, Any], *, path: str = "", name: str = "") -> ModelFacts:
    """Architecture facts and the formula parameter count from a config.json dict."""
    text, multimodal = _text_config(cfg)
    archs = cfg.get("architectures") or text.get("architectures") or []
    architecture = archs[0] if archs else ""
    model_type = str(text.get("model_type") or cfg.get("model_type") or "")
    h = int(_first(text, "hidden_size", "n_embd", "d_model", default=0))
    layers = int(_first(text, "num_hidden_layers", "n_layer", "num_layers", default=0))
    heads = int(_first(text, "num_attention_heads", "n_head", default=0))
    if not (h and layers and heads):
        missing = [k for k, v in (("hidden_size", h), ("num_hidden_layers", layers),
                                  ("num_attention_heads", heads)) if not v]
        raise ModelError(
            f"{path or name or 'config'}: config.json lacks {', '.join(missing)}; "
            "the studio trains decoder-only language models (Llama, Qwen, Mistral, Gemma, Phi, ...)")
    kv = int(_first(text, "num_key_value_heads", "num_kv_heads", default=heads) or heads)
    head_dim = int(_first(text, "head_dim", default=0) or h // heads)
    f = int(_first(text, "intermediate_size", "n_inner", "ffn_dim", default=0) or 4 * h)
    vocab = int(_first(text, "vocab_size", default=0))
    tie = bool(_first(text, "tie_word_embeddings", default=cfg.get("tie_word_embeddings", False)))
    if "tie_word_embeddings" not in text and "tie_word_embeddings" not in cfg:
        tie = model_type in _TIED_BY_DEFAULT
    max_pos = int(_first(text, "max_position_embeddings", "n_positions", "max_seq_len", default=0) or 0)
    dtype = str(_first(text, "torch_dtype", "dtype", default=cfg.get("torch_dtype") or cfg.get("dtype") or "float32"))
    experts = int(_first(text, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    topk = int(_first(text, "num_experts_per_tok", "moe_topk", default=0) or 0) if experts else 0
    moe_f = int(_first(text, "moe_intermediate_size", default=f) or f)
    attn_bias = bool(_first(text, "attention_bias", default=model_type in _QKV_BIAS_TYPES))
    norms = 4 if model_type in _FOUR_NORM_TYPES else 2

    shapes = _linear_shapes(model_type, h, f, heads, kv, head_dim, experts, moe_f,
                            shared_f=int(text.get("shared_expert_intermediate_size") or 0))
    expert_shapes = [sh for sh in shapes if sh.count > 1]
    shapes = [sh for sh in shapes if sh.count == 1]
    params = _formula_params(h, layers, vocab, tie, shapes + expert_shapes, heads, kv, head_dim, attn_bias, norms,
                             qk_norm=model_type in _QK_NORM_TYPES, router=experts * h if experts else 0)
    if multimodal and isinstance(cfg.get("vision_config"), dict):
        params += _vision_params(cfg["vision_config"], h)  # the loaded model carries its vision tower
    return ModelFacts(
        path=path, name=name or text.get("_name_or_path") or cfg.get("_name_or_path") or model_type,
        architecture=architecture, model_type=model_type, num_layers=layers, hidden_size=h,
        intermediate_size=f, num_heads=heads, num_kv_heads=kv, head_dim=head_dim, vocab_size=vocab,
        tie_word_embeddings=tie, max_position_embeddings=max_pos, torch_dtype=dtype.replace("torch.", ""),
        params_from_config=params, linear_shapes=tuple(shapes), expert_shapes=tuple(expert_shapes),
        multimodal=multimodal,
        num_experts=experts, experts_per_token=topk, norms_per_layer=norms, attention_bias=attn_bias,
        final_logit_softcapping=_softcap(text, model_type),
    )


def _softcap(text: dict[str, Any], model_type: str) -> Optional[float]:
    # Gemma 2 soft-caps its logits (default 30.0 when the key is absent); Gemma 3 does not.
    value = text.get("final_logit_softcapping", 30.0 if model_type == "gemma2" else None)
    return float(value) if value else None


_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text", "gpt2"}
_QKV_BIAS_TYPES = {"qwen2", "qwen2_moe"}
_QK_NORM_TYPES = {"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2"}
_FOUR_NORM_TYPES = {"gemma2", "gemma3", "gemma3_text", "olmo2"}
_FUSED_QKV_TYPES = {"phi3", "phimoe"}


def _linear_shapes(model_type: str, h: int, f: int, a: int, k: int, d: int,
                   experts: int, moe_f: int, shared_f: int) -> list[LinearShape]:
    """Per-layer linear modules by architecture: Llama-style unless the family fuses them."""
    hq, hkv = a * d, k * d
    if model_type in _FUSED_QKV_TYPES:  # Phi-3/4: one qkv_proj and one gate_up_proj
        attn = [LinearShape("qkv_proj", h, hq + 2 * hkv), LinearShape("o_proj", hq, h)]
    elif model_type in ("gpt2",):
        attn = [LinearShape("c_attn", h, 3 * h), LinearShape("c_proj", h, h)]
        return attn + [LinearShape("c_fc", h, f), LinearShape("mlp.c_proj", f, h)]
    else:
        attn = [LinearShape("q_proj", h, hq), LinearShape("k_proj", h, hkv),
                LinearShape("v_proj", h, hkv), LinearShape("o_proj", hq, h)]
    if experts:
        mlp = [LinearShape("gate_proj", h, moe_f, experts), LinearShape("up_proj", h, moe_f, experts),
               LinearShape("down_proj", moe_f, h, experts)]
        if shared_f:
            mlp += [LinearShape("shared_expert.gate_proj", h, shared_f),
                    LinearShape("shared_expert.up_proj", h, shared_f),
                    LinearShape("shared_expert.down_proj", shared_f, h)]
    elif model_type in _FUSED_QKV_TYPES:
        mlp = [LinearShape("gate_up_proj", h, 2 * f), LinearShape("down_proj", f, h)]
    else:
        mlp = [LinearShape("gate_proj", h, f), LinearShape("up_proj", h, f), LinearShape("down_proj", f, h)]
    return attn + mlp


def _vision_params(v: dict[str, Any], text_hidden: int) -> int:
    """A SigLIP-style vision tower plus a linear projector into the language model (Gemma 3)."""
    h = int(v.get("hidden_size") or 0)
    if not h:
        return 0
    f = int(v.get("intermediate_size") or 4 * h)
    layers = int(v.get("num_hidden_layers") or 0)
    patch = int(v.get("patch_size") or 14)
    image = int(v.get("image_size") or 224)
    per_layer = 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h  # attention, MLP, two layer norms
    total = layers * per_layer + 3 * patch * patch * h + h + (image // patch) ** 2 * h + 2 * h
    if v.get("vision_use_head", True):
        total += h + 4 * h * h + 4 * h + 2 * h + 2 * h * f + f + h  # attention-pooling head
    return total + h * text_hidden + h  # projector + its norm


def _formula_params(h: int, layers: int, vocab: int, tie: bool, shapes: list[LinearShape],
                    a: int, k: int, d: int, attn_bias: bool, norms: int, qk_norm: bool, router: int) -> int:
    per_layer = sum(s.params for s in shapes) + norms * h + router
    if attn_bias:
        per_layer += a * d + 2 * k * d
    if qk_norm:
        per_layer += 2 * d
    embed = vocab * h
    return embed + (0 if tie else embed) + layers * per_layer + h  # + final norm


# ---- safetensors headers ----------------------------------------------------------------------

def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file: 8-byte little-endian length, then the JSON."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise ModelError(f"{path}: truncated safetensors file (no header); re-download it")
            (n,) = struct.unpack("<Q", raw)
            if n <= 0 or n > _MAX_HEADER_BYTES:
                raise ModelError(f"{path}: not a safetensors file (header length {n}); re-download it")
            blob = fh.read(n)
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from e
    if len(blob) != n:
        raise ModelError(f"{path}: truncated safetensors header; re-download it")
    try:
        header = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: corrupt safetensors header ({e}); re-download it") from e
    if not isinstance(header, dict):
        raise ModelError(f"{path}: corrupt safetensors header; re-download it")
    return header


def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map") or {}
        files = sorted({folder / fname for fname in weight_map.values()})
        missing = [p.name for p in files if not p.exists()]
        if missing:
            raise ModelError(f"{folder}: the index lists {', '.join(missing[:3])} but they are missing; "
                             "the download is incomplete")
        return files
    return sorted(folder.glob("*.safetensors"))


def _tensor_shapes(files: Iterable[Path]) -> tuple[dict[str, list[int]], set[str]]:
    shapes: dict[str, list[int]] = {}
    dtypes: set[str] = set()
    for p in files:
        for key, meta in read_safetensors_header(p).items():
            if key == "__metadata__" or not isinstance(meta, dict):
                continue
            shapes[key] = list(meta.get("shape") or [])
            if meta.get("dtype"):
                dtypes.add(str(meta["dtype"]))
    return shapes, dtypes


def _count(shape: list[int]) -> int:
    n = 1
    for dim in shape:
        n *= int(dim)
    return n


_LAYER_MARKERS = (".layers.0.", ".h.0.", ".layer.0.", ".blocks.0.")


def _shapes_from_tensors(shapes: dict[str, list[int]]) -> list[LinearShape]:
    """Linear modules of the first decoder layer, read from tensor names and 2-D shapes."""
    found: dict[str, LinearShape] = {}
    for key, shape in shapes.items():
        if not key.endswith(".weight") or len(shape) != 2:
            continue
        if "vision" in key or "visual" in key or "audio" in key:
            continue
        marker = next((m for m in _LAYER_MARKERS if m in key), None)
        if marker is None:
            continue
        module = key.split(marker, 1)[1][: -len(".weight")]
        parts = module.split(".")
        if "experts" in parts:  # model.layers.0.mlp.experts.7.gate_proj -> gate_proj x experts
            i = parts.index("experts")
            name = "experts." + (".".join(parts[i + 2:]) or parts[-1])
        elif parts[-1] in ("gate", "router") and len(parts) > 1 and parts[-2] in ("mlp", "block_sparse_moe"):
            continue  # the MoE router: not a plain linear layer in transformers 5
        else:
            name = parts[-1] if parts[-1] != "c_proj" else module
        out_f, in_f = int(shape[0]), int(shape[1])
        if name in found:
            prev = found[name]
            found[name] = LinearShape(name, prev.in_features, prev.out_features, prev.count + 1)
        else:
            found[name] = LinearShape(name, in_f, out_f)
    return list(found.values())


# ---- folders ----------------------------------------------------------------------------------

def _dir_size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size  # follows the HF cache's symlinks to blobs
        except OSError:
            continue
    return total


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    tc = folder / "tokenizer_config.json"
    if tc.is_file():
        try:
            return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
        except (OSError, json.JSONDecodeError):
            return False
    return False


def inspect_model(path: str | os.PathLike[str], *, name: str = "", hub_id: Optional[str] = None) -> ModelFacts:
    """Facts about a Hugging Face model folder, reading only JSON files and safetensors headers."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelError(f"{folder} does not exist: pick a Hugging Face model folder (one that contains config.json)")
    if folder.is_file():
        if folder.name == "config.json":
            folder = folder.parent
        else:
            raise ModelError(f"{folder} is a file: pick the folder that contains config.json (a Hugging Face model folder)")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        hint = ""
        nested = sorted(p.parent for p in folder.glob("*/config.json"))
        if nested:
            hint = f" (found one in {nested[0]})"
        raise ModelError(f"{folder} has no config.json: pick the folder that contains config.json "
                         f"(a Hugging Face model folder){hint}")
    cfg = _read_json(cfg_path)
    facts = facts_from_config(cfg, path=str(folder), name=name or hub_id or folder.name)
    notes: list[str] = []
    files = _safetensors_files(folder)
    params_exact = None
    dtypes: tuple[str, ...] = ()
    shapes_from_weights: list[LinearShape] = []
    experts_from_weights: list[LinearShape] = []
    if files:
        tensors, seen = _tensor_shapes(files)
        dtypes = tuple(sorted(seen))
        if tensors:
            params_exact = sum(_count(s) for s in tensors.values())
            found = _shapes_from_tensors(tensors)
            shapes_from_weights = [x for x in found if not x.name.startswith("experts.")]
            experts_from_weights = [LinearShape(x.name[len("experts."):], x.in_features, x.out_features, x.count)
                                    for x in found if x.name.startswith("experts.")]
            if seen & {"U8", "I8"} and "quantization_config" in cfg:
                notes.append("weights are pre-quantized; the exact count counts packed storage elements")
    elif any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        notes.append("weights are in PyTorch .bin format; parameter count is computed from config.json")
    if facts.multimodal:
        notes.append("multimodal model: facts describe its language model")
    return replace(
        facts,
        params_exact=params_exact,
        size_on_disk=_dir_size(folder),
        linear_shapes=tuple(shapes_from_weights) or facts.linear_shapes,
        expert_shapes=tuple(experts_from_weights) or facts.expert_shapes,
        has_chat_template=_has_chat_template(folder),
        has_weights=bool(files) or any(folder.glob("*.bin")),
        hub_id=hub_id,
        weight_dtypes=dtypes,
        notes=tuple(notes),
    )


# ---- the Hugging Face hub cache ---------------------------------------------------------------

def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _snapshot(repo_dir: Path) -> Optional[Path]:
    """The snapshot refs/main points at, else the most recently modified one."""
    snaps = repo_dir / "snapshots"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        try:
            rev = ref.read_text(encoding="utf-8").strip()
        except OSError:
            rev = ""
        if rev and (snaps / rev).is_dir():
            return snaps / rev
    if not snaps.is_dir():
        return None
    candidates = [p for p in snaps.iterdir() if p.is_dir()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


@dataclass(frozen=True)
class CacheScan:
    models: list[ModelFacts]
    skipped: list[tuple[str, str]]  # (entry, reason)


def scan_hf_cache_detailed(cache_dir: Optional[str | os.PathLike[str]] = None) -> CacheScan:
    """Every model in the hub cache with its facts, and the entries skipped with a reason."""
    root = Path(cache_dir).expanduser() if cache_dir else hf_cache_dir()
    models: list[ModelFacts] = []
    skipped: list[tuple[str, str]] = []
    if not root.is_dir():
        return CacheScan(models, skipped)
    for repo_dir in sorted(root.glob("models--*")):
        hub_id = repo_dir.name[len("models--"):].replace("--", "/")
        snap = _snapshot(repo_dir)
        if snap is None:
            skipped.append((hub_id, "no downloaded snapshot"))
            continue
        try:
            models.append(inspect_model(snap, name=hub_id, hub_id=hub_id))
        except ModelError as e:
            skipped.append((hub_id, str(e)))
    return CacheScan(models, skipped)


def scan_hf_cache(cache_dir: Optional[str | os.PathLike[str]] = None) -> list[ModelFacts]:
    """The models in the hub cache (broken entries are left out; see scan_hf_cache_detailed)."""
    return scan_hf_cache_detailed(cache_dir).models


def find_in_hf_cache(hub_id: str, cache_dir: Optional[str | os.PathLike[str]] = None) -> Optional[Path]:
    """The snapshot folder of a hub id in the cache, or None."""
    root = Path(cache_dir).expanduser() if cache_dir else hf_cache_dir()
    repo_dir = root / ("models--" + hub_id.strip().replace("/", "--"))
    return _snapshot(repo_dir) if repo_dir.is_dir() else None


# ---- the bundled catalog of public configs ----------------------------------------------------

def catalog_dir() -> Path:
    return resources_dir() / "catalog"


def catalog_names() -> list[str]:
    """Hub ids of the bundled public configs (e.g. meta-llama/Llama-3.1-8B)."""
    out = []
    for p in sorted(catalog_dir().glob("*.json")):
        try:
            out.append(str(_read_json(p).get("_name_or_path") or p.stem))
        except ModelError:
            continue
    return out


def catalog_facts(name: str) -> ModelFacts:
    """Facts from a bundled public config, looked up by hub id or its short name (case-insensitive)."""
    wanted = name.strip().lower()
    for p in sorted(catalog_dir().glob("*.json")):
        cfg = _read_json(p)
        hub_id = str(cfg.get("_name_or_path") or p.stem)
        if wanted in (hub_id.lower(), hub_id.split("/")[-1].lower(), p.stem.lower()):
            facts = facts_from_config(cfg, path="", name=hub_id)
            return replace(facts, hub_id=hub_id, has_chat_template=bool(cfg.get("_has_chat_template", False)),
                           notes=("from the bundled catalog (config only)",))
    raise ModelError(f"{name!r} is not in the bundled catalog; known: {', '.join(catalog_names())}")


def resolve_facts(source: str, path: str) -> ModelFacts:
    """Facts for a ModelSpec's source/path: the demo model, a local folder, or a hub id
    (found in the HF cache, else in the bundled catalog)."""
    from studio.core.paths import demo_model_dir

    if source == "demo":
        return inspect_model(demo_model_dir(), name="demo")
    if source == "local" or Path(path).expanduser().exists():
        return inspect_model(path)
    snap = find_in_hf_cache(path)
    if snap is not None:
        return inspect_model(snap, name=path, hub_id=path)
    try:
        return catalog_facts(path)
    except ModelError:
        raise ModelError(f"{path!r} is neither a local folder nor in the Hugging Face cache or the bundled "
                         "catalog: download it first or pick a local folder") from None
