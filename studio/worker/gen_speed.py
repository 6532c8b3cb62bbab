"""``--worker genspeed RUN_DIR``: generation speed of the trained result, unmerged vs merged.

The D-LoRA trade-off in numbers on the user's own device: a *dynamic* adapter stays separate from
the base (hot-swappable, several adapters over one base, but every forward pays the adapter's
extra matmuls), a *static* merged model folds it in (base-model speed, one model per task). The
base is loaded once, unquantized, in the run's precision; the adapter is attached, greedy
generation is timed (warm-up, then the median of ``repeats``), then the adapter is merged and the
same generation is timed again. Each measurement is a ``genspeed`` event (in
RUN_DIR/exports/genspeed.jsonl and on stdout), and the pair is written to RUN_DIR/genspeed.json.
Methods that cannot be merged (soft prompts) get the unmerged number only, with the reason.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from studio import __version__
from studio.core.runs import Run
from studio.worker.errors import WorkerError, classify
from studio.worker.reporter import Reporter

RESULT_FILE = "genspeed.json"


def main(run_dir: str | Path, source: Optional[str] = None, new_tokens: int = 128, batch: int = 1,
         prompt_tokens: int = 64, repeats: int = 3) -> int:
    run = Run(Path(run_dir))
    run.exports_dir.mkdir(parents=True, exist_ok=True)
    with Reporter(run.path, events_path=run.exports_dir / "genspeed.jsonl",
                  log_path=run.exports_dir / "genspeed.log") as rep:
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        cfg = None
        try:
            cfg = run.config()
            results = measure(run, cfg, rep, source=source, new_tokens=new_tokens, batch=batch,
                              prompt_tokens=prompt_tokens, repeats=repeats)
        except BaseException as e:  # noqa: BLE001 - every failure ends as an event
            kind, message = classify(e, cfg)
            tb = traceback.format_exc()
            rep.log(tb.rstrip())
            rep.emit("error", message=message, kind=kind, traceback=tb if kind == "internal" else None)
            rep.emit("done", status="failed", message=message)
            return 1
        rep.emit("done", status="completed", message=summary(results))
        return 0


def measure(run: Run, cfg: Any, rep: Reporter, source: Optional[str] = None, new_tokens: int = 128,
            batch: int = 1, prompt_tokens: int = 64, repeats: int = 3) -> dict[str, Any]:
    import torch

    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, resolve_placement

    trained = Path(source).expanduser() if source else run.adapter_dir
    if not trained.is_dir() or not any(trained.iterdir()):
        raise WorkerError(f"No trained weights in {trained}: train the run first.", kind="config")
    placement = resolve_placement(cfg)
    rep.emit("phase", phase="loading_model", detail="base model, unquantized, for both measurements")
    base, _ = load_model(cfg, placement, None, log=rep.log)
    runtime = runtime_for(cfg)
    model = runtime.load_trained(base, trained)
    model.eval()
    model.config.use_cache = True
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.config.use_cache = True
    vocab = int(inner.get_input_embeddings().weight.shape[0])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, max(vocab, 4), (batch, prompt_tokens), generator=g).to(placement.device)
    meta = dict(new_tokens=new_tokens, batch=batch, prompt_tokens=prompt_tokens, device=placement.device,
                dtype=placement.precision, method=cfg.method.name)
    results: dict[str, Any] = {"method": cfg.method.name, "mergeable": type(cfg.method).info.mergeable}

    rep.emit("phase", phase="measuring", detail="adapter kept separate (dynamic)")
    results["adapter"] = _time_generation(model, ids, new_tokens, repeats, placement.device)
    rep.emit("genspeed", mode="adapter", **results["adapter"], **meta)
    if results["mergeable"]:
        rep.emit("phase", phase="measuring", detail="adapter merged into the weights (static)")
        merged = runtime.merge(model)
        merged.eval()
        results["merged"] = _time_generation(merged, ids, new_tokens, repeats, placement.device)
        rep.emit("genspeed", mode="merged", **results["merged"], **meta)
        results["speedup"] = round(results["merged"]["tokens_per_s"] / max(results["adapter"]["tokens_per_s"], 1e-9), 3)
    else:
        results["merge_note"] = type(cfg.method).info.merge_note
        rep.emit("warning", message=f"{type(cfg.method).info.title} cannot be merged: "
                                    f"{type(cfg.method).info.merge_note}")
    results.update(meta)
    (run.path / RESULT_FILE).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def _time_generation(model: Any, ids: Any, new_tokens: int, repeats: int, device: str) -> dict[str, float]:
    import torch

    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                  pad_token_id=0, attention_mask=torch.ones_like(ids))
    with torch.inference_mode():
        model.generate(ids, **{**kwargs, "max_new_tokens": min(8, new_tokens), "min_new_tokens": min(8, new_tokens)})
        times = []
        for _ in range(max(1, repeats)):
            _sync(device)
            start = time.perf_counter()
            model.generate(ids, **kwargs)
            _sync(device)
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    tokens = ids.shape[0] * new_tokens
    return {"tokens_per_s": round(tokens / seconds, 1), "ms_per_token": round(1000 * seconds / new_tokens, 3),
            "seconds": round(seconds, 4)}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def summary(results: dict[str, Any]) -> str:
    a = results["adapter"]["tokens_per_s"]
    if "merged" not in results:
        return f"Adapter (unmerged): {a:,.0f} tokens/s; this method cannot be merged."
    m = results["merged"]["tokens_per_s"]
    return (f"Adapter (dynamic): {a:,.0f} tokens/s; merged (static): {m:,.0f} tokens/s "
            f"({results['speedup']:.2f}x) on {results['device']}.")
