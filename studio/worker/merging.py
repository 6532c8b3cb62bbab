"""The trained run as one plain transformers model: base loaded unquantized, training folded in.

Shared by the merged export (saved as safetensors) and the GGUF export (written for llama.cpp):
the base is loaded WITHOUT quantization (so QLoRA is dequantized) in ``merge_dtype``, the method
puts its trained weights on it (``MethodRuntime.load_trained``) and folds them in (``merge``),
and the tokenizer is the one the run trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass
class Merged:
    model: Any
    tokenizer: Any
    location: str  # the base model's folder or hub id
    tokenizer_dir: Path  # where the tokenizer files came from


def merge_dtype(location: str, dtype: str, cfg: Any) -> Any:
    """bf16 for the usual half-precision checkpoints, fp32 when the base itself is fp32."""
    import torch

    if dtype != "auto":
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(location, trust_remote_code=cfg.model.trust_remote_code)
    stored = getattr(conf, "dtype", None) or getattr(conf, "torch_dtype", None)
    if str(stored).replace("torch.", "") in ("float32", "None"):
        return torch.float32
    if str(stored).replace("torch.", "") == "float16":
        return torch.float16
    return torch.bfloat16


def load_base(cfg: Any, dtype: Any) -> tuple[Any, str]:
    """A fresh, unquantized base model on the CPU, and where it came from."""
    from studio.worker.modeling import load_pretrained, model_location

    location = model_location(cfg)
    base = load_pretrained(location, cfg, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                           revision=cfg.model.revision if cfg.model.source == "hub" else None)
    return base, location


def run_tokenizer(trained: Path, location: str, cfg: Any) -> tuple[Any, Path]:
    """The tokenizer the run trained with: saved beside the trained weights, else the base's, as written."""
    from transformers import AutoTokenizer

    from studio.worker.modeling import faithful_to_file

    source = Path(trained) if (Path(trained) / "tokenizer_config.json").exists() else Path(location)
    tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=cfg.model.trust_remote_code)
    return faithful_to_file(tokenizer, str(source)), source


def load_merged(trained: Path, cfg: Any, dtype: str, progress: Callable[[str, int, int], None],
                log: Callable[[str], None], total: int = 4) -> Merged:
    """Base + trained weights, merged; progress steps 0-2 of ``total``."""
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import model_location

    location = model_location(cfg)
    progress("loading the base model (unquantized)", 0, total)
    torch_dtype = merge_dtype(location, dtype, cfg)
    base, location = load_base(cfg, torch_dtype)
    log(f"merging in {str(torch_dtype).replace('torch.', '')} on the CPU")
    runtime = runtime_for(cfg)
    progress("applying the trained weights", 1, total)
    model = runtime.load_trained(base, trained)
    progress("merging", 2, total)
    merged = runtime.merge(model)
    merged.config.use_cache = True  # training turned it off; inference wants it
    tokenizer, tok_dir = run_tokenizer(trained, location, cfg)  # export the tokens the run trained on
    return Merged(merged, tokenizer, location, tok_dir)
