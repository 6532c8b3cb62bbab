"""``--worker export RUN_DIR --kind adapter|merged|gguf --out DIR``: hand the trained result over.

``adapter`` copies the trained weights (PEFT format for adapter methods) with the model card
(README.md and curves.png, studio.core.model_card).
``merged`` loads the base WITHOUT quantization (so QLoRA is dequantized), puts the trained weights
on it, folds them in through the method's ``merge`` hook and saves a plain transformers model
(safetensors, tokenizer, generation config) that ``AutoModelForCausalLM.from_pretrained`` loads.
The tokenizer of either (when the adapter has one) carries the chat template the run trained with
(a custom one, a named one) as its chat_template (studio.worker.merging.run_template).
``gguf`` writes one file for llama.cpp and Ollama (studio.worker.export_gguf).
Every kind is verified unless ``--no-verify`` (studio.worker.verify): the export is reloaded the
way its users will load it and compared with the model it came from; the verdict is
``verification.json`` in the folder and a ``verification`` event, and a failed check makes the
job fail (the export is kept, marked FAILED).
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
from studio.core.checkpoints import RESUME_FILE, STATE_FILE
from studio.core.model_card import build_card
from studio.core.runs import Run
from studio.worker.errors import WorkerError, classify
from studio.worker.reporter import Reporter
from studio.worker.verify import VERDICT_FILE, Verdict

KINDS = ("adapter", "merged", "gguf")


_WHAT = {"adapter": "adapter", "merged": "merged model", "gguf": "GGUF model"}


def main(run_dir: str | Path, kind: str, out: str | Path, source: Optional[str] = None, dtype: str = "auto",
         quant: str = "f16", verify: bool = True) -> int:
    run = Run(Path(run_dir))
    exports = run.exports_dir
    exports.mkdir(parents=True, exist_ok=True)
    with Reporter(run.path, events_path=exports / "export.jsonl", log_path=exports / "export.log") as rep:
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        cfg = None
        try:
            cfg = run.config()
            path, verdict = export(run, cfg, kind, Path(out).expanduser(), rep, source=source, dtype=dtype,
                                   quant=quant, verify=verify)
        except BaseException as e:  # noqa: BLE001 - report every failure as an event
            kind_, message = classify(e, cfg, writing=Path(out).expanduser(), then="export again")
            tb = traceback.format_exc()
            rep.log(tb.rstrip())
            rep.emit("error", message=message, kind=kind_, traceback=tb if kind_ == "internal" else None)
            rep.emit("done", status="failed", message=message)
            return 1
        if verdict is not None:
            rep.emit("verification", kind=kind, passed=verdict.passed, summary=verdict.summary(),
                     path=str(path / VERDICT_FILE), checks=[{"name": c.name, "passed": c.passed, "detail": c.detail}
                                                           for c in verdict.checks])
            if not verdict.passed:
                rep.emit("done", status="failed",
                         message=f"Exported the {_WHAT[kind]} to {path}, but {verdict.summary()}")
                return 1
        rep.emit("done", status="completed", message=f"Exported the {_WHAT[kind]} to {path}"
                 + (f" ({verdict.summary()})" if verdict is not None else " (not verified)"))
        return 0


def export(run: Run, cfg: Any, kind: str, out: Path, rep: Reporter, source: Optional[str] = None,
           dtype: str = "auto", quant: str = "f16", verify: bool = True) -> tuple[Path, Optional[Verdict]]:
    """The export in ``out`` and its verdict (None when not verified)."""
    if kind not in KINDS:
        raise WorkerError(f"unknown export kind {kind!r}; use adapter, merged or gguf", kind="config")
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
        verdict = _export_adapter(trained, out, cfg, run, rep, verify)
    elif kind == "merged":
        verdict = _export_merged(trained, out, cfg, run, rep, dtype, verify)
    else:
        from studio.worker.export_gguf import export_gguf

        verdict = export_gguf(trained, out, cfg, run, rep, quant, verify=verify, dtype=dtype)
    rep.emit("artifact", kind=kind, path=str(out))
    return out, verdict


def _export_adapter(trained: Path, out: Path, cfg: Any, run: Run, rep: Reporter, verify: bool) -> Optional[Verdict]:
    from studio.worker.merging import carry_run_template
    from studio.worker.saving import save_atomically

    check = _adapter_reference(trained, cfg, rep) if verify else None
    verdict: Optional[Verdict] = None

    def write(folder: Path) -> None:
        nonlocal verdict
        # A checkpoint folder also holds the optimizer state and the resume record: training's, not the adapter's
        files = [p for p in trained.iterdir() if p.is_file() and p.name not in (STATE_FILE, RESUME_FILE)]
        for i, p in enumerate(files, 1):
            shutil.copy2(p, folder / p.name)
            rep.emit("progress", label="copying", current=i, total=len(files))
        carry_run_template(folder, cfg)
        if check is not None:
            from studio.worker.verify import save_verdict
            from studio.worker.verify_reload import verify_adapter

            rep.emit("progress", label="verifying: reloading with plain PEFT", current=len(files), total=len(files))
            verdict = verify_adapter(folder, *check)
            save_verdict(folder, verdict)
        build_card(run, "adapter", folder=folder, cfg=cfg).write(folder)

    save_atomically(out, write)
    return verdict


def _adapter_reference(trained: Path, cfg: Any, rep: Reporter) -> tuple[Any, ...]:
    """What the studio's own loading of the trained weights answers: the adapter check's reference."""
    from studio.worker.merging import load_base, merge_dtype, run_tokenizer
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import model_location
    from studio.worker.verify import check_inputs, compute_reference, stop_ids

    rep.emit("progress", label="verifying: the studio's own loading of the adapter", current=0, total=1)
    dtype = merge_dtype(model_location(cfg), "auto", cfg)
    base, location = load_base(cfg, dtype)
    model = runtime_for(cfg).load_trained(base, trained)
    tokenizer, _ = run_tokenizer(trained, location, cfg)
    inputs = check_inputs(cfg, tokenizer, rep.log)
    stops = stop_ids(tokenizer, location)
    cache = type(cfg.method).info.mergeable  # soft prompts recompute every step
    ref = compute_reference(model, inputs, stops, keep_logits=True, use_cache=cache)
    del model, base
    return inputs, ref, tokenizer, stops, location, dtype, cache


def _export_merged(trained: Path, out: Path, cfg: Any, run: Run, rep: Reporter, dtype: str,
                   verify: bool) -> Optional[Verdict]:
    from studio.worker.merging import load_merged, run_template
    from studio.worker.saving import save_atomically
    from studio.worker.verify import check_inputs, compute_reference, save_verdict, stop_ids
    from studio.worker.verify_reload import verify_merged

    total = 5 if verify else 4
    done = load_merged(trained, cfg, dtype, lambda label, i, n: rep.emit("progress", label=label, current=i,
                                                                         total=total), rep.log, total)
    merged, tokenizer = done.model, done.tokenizer
    check = None
    if verify:
        inputs = check_inputs(cfg, tokenizer, rep.log)
        stops = stop_ids(tokenizer, done.location)
        check = (inputs, compute_reference(merged, inputs, stops, keep_logits=True), tokenizer, stops)
    rep.emit("progress", label="saving", current=3, total=total)
    verdict: Optional[Verdict] = None

    def write(folder: Path) -> None:
        nonlocal verdict
        merged.save_pretrained(folder, safe_serialization=True)
        template = run_template(tokenizer, cfg)
        if template is not None:  # transformers users' apply_chat_template renders what the run trained on
            tokenizer.chat_template = template
        tokenizer.save_pretrained(folder)
        if getattr(merged, "generation_config", None) is not None:
            merged.generation_config.save_pretrained(folder)
        if check is not None:
            rep.emit("progress", label="verifying: reloading with plain transformers", current=4, total=total)
            verdict = verify_merged(folder, *check, dtype=merged.dtype)
            save_verdict(folder, verdict)
        build_card(run, "merged", folder=folder, cfg=cfg).write(folder)

    save_atomically(out, write)
    rep.emit("progress", label="done", current=total, total=total)
    return verdict
