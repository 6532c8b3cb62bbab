"""``--worker export RUN_DIR --kind adapter|merged --out DIR``: hand the trained result over.

``adapter`` copies the trained weights (PEFT format for adapter methods) with the model card
(README.md and curves.png, studio.core.model_card).
``merged`` loads the base WITHOUT quantization (so QLoRA is dequantized), puts the trained weights
on it, folds them in through the method's ``merge`` hook and saves a plain transformers model
(safetensors, tokenizer, generation config) that ``AutoModelForCausalLM.from_pretrained`` loads.
Events and log go to ``RUN_DIR/exports/export.jsonl`` and ``export.log``, so exporting never
rewrites the training record.
"""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

from studio import __version__
from studio.core.model_card import build_card
from studio.core.runs import Run
from studio.worker.errors import WorkerError, classify
from studio.worker.reporter import Reporter

KINDS = ("adapter", "merged")


def main(run_dir: str | Path, kind: str, out: str | Path, source: Optional[str] = None, dtype: str = "auto") -> int:
    run = Run(Path(run_dir))
    exports = run.exports_dir
    exports.mkdir(parents=True, exist_ok=True)
    with Reporter(run.path, events_path=exports / "export.jsonl", log_path=exports / "export.log") as rep:
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        cfg = None
        try:
            cfg = run.config()
            path = export(run, cfg, kind, Path(out).expanduser(), rep, source=source, dtype=dtype)
        except BaseException as e:  # noqa: BLE001 - report every failure as an event
            kind_, message = classify(e, cfg, writing=Path(out).expanduser(), then="export again")
            tb = traceback.format_exc()
            rep.log(tb.rstrip())
            rep.emit("error", message=message, kind=kind_, traceback=tb if kind_ == "internal" else None)
            rep.emit("done", status="failed", message=message)
            return 1
        rep.emit("done", status="completed", message=f"Exported the {kind} to {path}")
        return 0


def export(run: Run, cfg: Any, kind: str, out: Path, rep: Reporter, source: Optional[str] = None,
           dtype: str = "auto") -> Path:
    if kind not in KINDS:
        raise WorkerError(f"unknown export kind {kind!r}; use adapter or merged", kind="config")
    trained = Path(source).expanduser() if source else run.adapter_dir
    if not trained.is_dir() or not any(trained.iterdir()):
        raise WorkerError(f"No trained weights in {trained}: train the run first (a stopped run saves them too).",
                          kind="config")
    info = type(cfg.method).info
    if kind == "merged" and not info.mergeable:
        raise WorkerError(f"{info.title} cannot be merged into the base model: "
                          f"{info.merge_note or 'its weights are not a change of the base weights'}. "
                          "Export the adapter instead.", kind="config")
    rep.emit("phase", phase="exporting", detail=f"{kind} -> {out}")
    if out.exists() and any(out.iterdir()):
        raise WorkerError(f"{out} already exists and is not empty; choose a new folder.", kind="config")
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "adapter":
        _export_adapter(trained, out, cfg, run, rep)
    else:
        _export_merged(trained, out, cfg, run, rep, dtype)
    rep.emit("artifact", kind=kind, path=str(out))
    return out


def _export_adapter(trained: Path, out: Path, cfg: Any, run: Run, rep: Reporter) -> None:
    from studio.worker.saving import save_atomically

    def write(folder: Path) -> None:
        files = [p for p in trained.iterdir() if p.is_file()]
        for i, p in enumerate(files, 1):
            shutil.copy2(p, folder / p.name)
            rep.emit("progress", label="copying", current=i, total=len(files))
        build_card(run, "adapter", folder=folder, cfg=cfg).write(folder)

    save_atomically(out, write)


def _export_merged(trained: Path, out: Path, cfg: Any, run: Run, rep: Reporter, dtype: str) -> None:
    import torch
    from transformers import AutoTokenizer

    from studio.worker.methods import runtime_for
    from studio.worker.modeling import faithful_to_file, load_pretrained, model_location
    from studio.worker.saving import save_atomically

    total = 4
    location = model_location(cfg)
    rep.emit("progress", label="loading the base model (unquantized)", current=0, total=total)
    torch_dtype = _merge_dtype(location, dtype, cfg)
    base = load_pretrained(location, cfg, dtype=torch_dtype, trust_remote_code=cfg.model.trust_remote_code,
                           revision=cfg.model.revision if cfg.model.source == "hub" else None)
    rep.log(f"merging in {str(torch_dtype).replace('torch.', '')} on the CPU")
    runtime = runtime_for(cfg)
    rep.emit("progress", label="applying the trained weights", current=1, total=total)
    model = runtime.load_trained(base, trained)
    rep.emit("progress", label="merging", current=2, total=total)
    merged = runtime.merge(model)
    merged.config.use_cache = True  # training turned it off; inference wants it
    tok_source = trained if (trained / "tokenizer_config.json").exists() else location
    tokenizer = AutoTokenizer.from_pretrained(str(tok_source), trust_remote_code=cfg.model.trust_remote_code)
    tokenizer = faithful_to_file(tokenizer, str(tok_source))  # export the tokens the run trained on
    rep.emit("progress", label="saving", current=3, total=total)

    def write(folder: Path) -> None:
        merged.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        if getattr(merged, "generation_config", None) is not None:
            merged.generation_config.save_pretrained(folder)
        build_card(run, "merged", folder=folder, cfg=cfg).write(folder)

    save_atomically(out, write)
    rep.emit("progress", label="done", current=total, total=total)


def _merge_dtype(location: str, dtype: str, cfg: Any) -> Any:
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
