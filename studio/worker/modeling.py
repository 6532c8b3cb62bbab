"""Load the model and tokenizer a run asks for, on the device and in the precision it resolves to.

Sources: the embedded demo, a local Hugging Face folder, or a hub id (from the local cache, or
downloaded when the hub is reachable). Every automatic decision is returned with its reason so the
plan event and engine.json can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from studio.core.config import RunConfig
from studio.core.disk import is_disk_full
from studio.core.engine_choice import Choice
from studio.worker.errors import ModelLoadError

_TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass
class Placement:
    device: str  # "cuda" or "cpu"
    precision: str  # "bf16", "fp16" or "fp32"
    choices: dict[str, Choice] = field(default_factory=dict)

    @property
    def dtype(self) -> Any:
        import torch

        return getattr(torch, _TORCH_DTYPES[self.precision])


def resolve_placement(cfg: RunConfig) -> Placement:
    import torch

    t = cfg.training
    choices: dict[str, Choice] = {}
    has_cuda = torch.cuda.is_available()
    if t.device == "auto":
        device = "cuda" if has_cuda else "cpu"
        choices["device"] = Choice(device, "a CUDA GPU is available" if has_cuda else "no CUDA GPU found")
    elif t.device == "cuda" and not has_cuda:
        raise ModelLoadError("Device is set to 'cuda' but no CUDA GPU is available here. Set Device to 'auto' or 'cpu'.",
                             kind="config")
    else:
        device = t.device
    if t.precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            choices["precision"] = Choice(precision, "the GPU supports bf16" if precision == "bf16" else "this GPU has no bf16")
        else:
            precision = "fp32"
            choices["precision"] = Choice("fp32", "training on the CPU")
    else:
        precision = t.precision
        if precision == "fp16" and device == "cpu":
            raise ModelLoadError("fp16 training needs a GPU; on the CPU use fp32 or bf16.", kind="config")
    return Placement(device, precision, choices)


def model_location(cfg: RunConfig) -> str:
    """The path or hub id to load from."""
    if cfg.model.source == "demo":
        from studio.core.paths import demo_model_dir

        return str(demo_model_dir())
    path = cfg.model.path.strip()
    if cfg.model.source == "local":
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"Model folder not found: {folder}. Pick the folder that holds config.json.")
        if not (folder / "config.json").exists():
            raise ModelLoadError(f"{folder} has no config.json; pick the folder of a Hugging Face model "
                                 "(the one with config.json and the .safetensors files).")
        return str(folder)
    return path


def load_tokenizer(cfg: RunConfig, location: Optional[str] = None) -> Any:
    from transformers import AutoTokenizer

    location = location or model_location(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(location, revision=_revision(cfg),
                                            trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"Cannot load the tokenizer of {location}: {e}") from e
    tok = faithful_to_file(tok, location)
    if tok.pad_token_id is None:
        # Padding positions carry no loss and no attention, so any id will do; EOS is the usual pick.
        tok.pad_token = tok.eos_token
    return tok


_PROBE = "Hello, world! Ünïcödé 123 4567 — 你好 \t  tabs\nnew line ok's don't"


def faithful_to_file(tok: Any, location: str) -> Any:
    """The folder's own tokenizer.json, when transformers' class for the architecture encodes otherwise.

    transformers 5 maps some architectures (qwen2, ...) to a tokenizer class that rebuilds the
    tokenizer from the file's vocabulary with the class's own model and pre-tokenizer, ignoring the
    file's. For a folder whose tokenizer.json is something else (a custom or extended tokenizer on
    that architecture) the worker would train on different tokens than the data page previews
    (which reads tokenizer.json) -- in the worst case on almost none. The file is the truth.
    """
    tj = Path(location) / "tokenizer.json"
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None or not tj.is_file():
        return tok
    try:
        from tokenizers import Tokenizer

        ref = Tokenizer.from_file(str(tj))
    except Exception:  # an unreadable file: transformers' reading is all there is
        return tok
    vocab = ref.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    sample = [t for t, _ in by_id[:: max(1, len(by_id) // 64)]][:64]
    probes = [_PROBE, ref.decode([vocab[t] for t in sample]), " ".join(sample)]
    if all(backend.encode(p, add_special_tokens=False).ids == ref.encode(p, add_special_tokens=False).ids
           for p in probes):
        return tok
    from transformers import PreTrainedTokenizerFast

    special = {k: v for k in ("bos_token", "eos_token", "pad_token", "unk_token")
               if isinstance(v := getattr(tok, k, None), str) and v}
    fixed = PreTrainedTokenizerFast(tokenizer_object=ref, **special)
    fixed.chat_template = getattr(tok, "chat_template", None)
    fixed.name_or_path = getattr(tok, "name_or_path", location)
    for attr in ("padding_side", "truncation_side", "model_max_length"):
        if hasattr(tok, attr):
            setattr(fixed, attr, getattr(tok, attr))
    print(f"tokenizer: {type(tok).__name__} encodes differently from {tj.name}; using {tj.name} as written")
    return fixed


def load_model(cfg: RunConfig, placement: Placement, quantization_config: Any = None,
               log: Callable[[str], None] = print, dtype: Any = None) -> tuple[Any, dict[str, Choice]]:
    """The model in train mode on its device, plus the choices made while loading.

    ``dtype`` overrides the placement's (fp32 master weights for fp16 full-parameter training)."""
    location = model_location(cfg)
    choices: dict[str, Choice] = {}
    attn = cfg.model.attn_implementation
    if attn == "auto":
        attn = "sdpa"
        choices["attention"] = Choice("sdpa", "PyTorch fused attention; flash kernels on recent GPUs")
    kwargs: dict[str, Any] = dict(dtype=dtype or placement.dtype, attn_implementation=attn, revision=_revision(cfg),
                                  trust_remote_code=cfg.model.trust_remote_code)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        kwargs["device_map"] = {"": 0}
    pickled = pickle_weights(location)
    if pickled:
        choices["weights"] = Choice(f"{pickled} (PyTorch's pickle format)", "read by its weights-only loader: tensors "
                                    "only, no code; .safetensors files load faster")
        log(f"weights: {choices['weights'].text()}")
    try:
        model = load_pretrained(location, cfg, **kwargs)
    except ValueError as e:
        if "attn_implementation" in str(e) or "attention" in str(e).lower():
            log(f"{attn} attention is not supported by this model ({e}); falling back to eager")
            kwargs["attn_implementation"] = "eager"
            choices["attention"] = Choice("eager", "the model does not support SDPA")
            model = load_pretrained(location, cfg, **kwargs)
        else:
            raise ModelLoadError(f"Cannot load the model {location}: {e}") from e
    if quantization_config is None:
        model.to(placement.device)
    model.config.use_cache = False  # the KV cache is useless in training and costs memory
    return model, choices


def load_pretrained(location: str, cfg: RunConfig, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_pretrained``, with damaged, mismatched or unsafe weights explained.

    What a user can get wrong with a model folder (a half-copied .safetensors file, files of two
    models mixed, pickled weights that carry code, a hub id that is neither cached nor reachable)
    becomes a ModelLoadError that names the folder and says what to do; a ValueError is left for
    the caller (the attention fallback reads it).
    """
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except ValueError:
        raise
    except OSError as e:
        if is_disk_full(e):
            raise
        hint = (" It is not in the local Hugging Face cache and the hub is not reachable; download it first."
                if cfg.model.source == "hub" else "")
        raise ModelLoadError(f"Cannot load the model {location}: {e}.{hint}") from e
    except Exception as e:  # noqa: BLE001 - sorted into what the user can act on, else re-raised
        text = str(e)
        if type(e).__name__ == "SafetensorError" or "deserializing header" in text:
            raise ModelLoadError(f"The weights in {location} cannot be read ({text[:160]}): a .safetensors file is "
                                 "incomplete or damaged. Download or copy the model again.") from None
        if "size mismatch" in text or "ignore_mismatched_sizes" in text or "MISMATCH" in text:
            raise ModelLoadError(f"The weights in {location} do not fit its config.json: tensor shapes differ (for "
                                 "example hidden_size or the vocabulary). The folder mixes files of two models or a "
                                 "config.json was edited; download or copy the model again.") from None
        if "weights only load failed" in text.lower() or "unsupported global" in text.lower():
            raise ModelLoadError(f"Refused to load the weights in {location}: a pickled weights file holds code, not "
                                 "only tensors, and loading it would run that code. Use a copy of the model in "
                                 ".safetensors format from a source you trust.") from None
        raise


def pickle_weights(location: str) -> str:
    """The name of a local folder's pickle-format weights file, when it has no safetensors ("" otherwise)."""
    folder = Path(location)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return ""
    found = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth") and p.is_file())
    return found[0] if found else ""


def count_parameters(model: Any) -> tuple[int, int]:
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        # 4-bit weights pack two values per byte-sized element
        if p.__class__.__name__ == "Params4bit":
            n *= 2
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def _revision(cfg: RunConfig) -> Optional[str]:
    return cfg.model.revision if cfg.model.source == "hub" else None
