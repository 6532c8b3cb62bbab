"""The trained run as one plain transformers model: base loaded unquantized, training folded in.

Shared by the merged export (saved as safetensors) and the GGUF export (written for llama.cpp):
the base is loaded WITHOUT quantization (so QLoRA is dequantized) in ``merge_dtype``, the method
puts its trained weights on it (``MethodRuntime.load_trained``) and folds them in (``merge``),
and the tokenizer is the one the run trained with. ``run_template`` is the chat template it trained
with, which the exports' tokenizers carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


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


def run_template(tokenizer: Any, cfg: Any) -> Optional[str]:
    """The chat template the run trained with, as the chat_template of a tokenizer that transformers users load
    (None: the tokenizer's own is it, or the run trained on plain text). A custom template is written as it is;
    a named one, or ChatML for a model without a template, writes the BOS training put in front where the
    tokenizer adds one, since apply_chat_template's text is tokenized without special tokens."""
    from studio.core.chat_formats import run_chat_template, tokenizer_writes_bos

    own = tokenizer.chat_template if isinstance(getattr(tokenizer, "chat_template", None), str) else None
    if cfg.data.format == "text" or (cfg.data.template == "auto" and own):
        return None
    return run_chat_template(cfg.data.effective_template, own, writes_bos=tokenizer_writes_bos(tokenizer))[0]


def carry_run_template(folder: Path, cfg: Any) -> None:
    """Make the tokenizer files in ``folder`` (an adapter export) carry the run's chat template."""
    if not (folder / "tokenizer_config.json").is_file():
        return
    from transformers import AutoTokenizer

    from studio.worker.modeling import faithful_to_file

    loaded = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=cfg.model.trust_remote_code)
    template = run_template(faithful_to_file(loaded, str(folder)), cfg)
    if template is not None:
        write_chat_template(folder, template)


def write_chat_template(folder: Path, template: str) -> None:
    """Set a saved tokenizer's chat template as transformers 5 saves one: chat_template.jinja, which wins over a
    template in tokenizer_config.json (removed there, so the folder says one thing)."""
    import json

    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    config_file = folder / "tokenizer_config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(config, dict) and "chat_template" in config:
        del config["chat_template"]
        config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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
