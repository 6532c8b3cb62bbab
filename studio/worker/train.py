"""``--worker train RUN_DIR``: train the run described by RUN_DIR/config.yaml.

The orchestration, top to bottom: resolve device and precision, load tokenizer and model (the
method decides quantization), decide the engine (checkpointing, loss), wrap the model with the
method, prepare the data, plan, run the loop, save. The pieces live in small modules beside this
one; this file only puts them in order and turns outcomes into status and events. With
``--resume`` the same run continues in place from its newest checkpoint (studio/worker/resume.py).
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import __version__
from studio.core.config import RunConfig
from studio.core.runs import own_start_time, process_started
from studio.worker.errors import classify
from studio.worker.reporter import Reporter


def main(run_dir: str | Path, resume: bool = False) -> int:
    """Exit status 0 when the run completed or was stopped and saved, 1 when it failed."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        print(f"{run_dir}: no config.yaml; create the run with the studio or `studio train`", file=sys.stderr)
        return 2
    with Reporter(run_dir) as rep:
        rep.install_signal_handlers()
        pid, started = os.getpid(), process_started(os.getpid())
        if rep.run.clear_stale_stop(before=own_start_time()):
            rep.log("removed the stop request left by the previous attempt")
        if resume:  # the run keeps its first start time; the outcome of the earlier attempt is cleared
            rep.set_status(state="running", pid=pid, pid_started=started, resumed=time.time(), ended=None,
                           message="", error_kind=None)
        else:
            rep.set_status(state="running", pid=pid, pid_started=started, started=time.time(), message="")
        rep.emit("hello", pid=os.getpid(), version=__version__, argv=sys.argv)
        cfg = None
        try:
            cfg = RunConfig.load(run_dir / "config.yaml")
            status, message, extra = train(cfg, rep, resume=resume)
        except BaseException as e:  # noqa: BLE001 - every failure must end as a 'failed' record
            return _fail(rep, e, cfg)
        rep.set_status(state=status, ended=time.time(), message=message, **extra)
        rep.emit("done", status=status, message=message)
        return 0


def _fail(rep: Reporter, exc: BaseException, cfg: Any) -> int:
    from studio.core.checkpoints import latest_checkpoint

    ckpt = latest_checkpoint(rep.run.path)
    then = (f"press Resume (studio train --resume {rep.run.path}): it continues from the checkpoint at step {ckpt.step}"
            if ckpt else "start the run again")
    kind, message = classify(exc, cfg, writing=rep.run.path, then=then)
    tb = traceback.format_exc()
    rep.log(tb.rstrip())  # the full story is always in the log; the event carries it only for bugs
    rep.emit("error", message=message, kind=kind, traceback=tb if kind == "internal" else None)
    rep.set_status(state="failed", ended=time.time(), message=message, error_kind=kind)
    rep.emit("done", status="failed", message=message)
    return 1


@dataclass
class Session:
    """Everything one training attempt builds before its loop, in the order it is built."""

    cfg: RunConfig
    rep: Reporter
    runtime: Any = None
    placement: Any = None
    engine: Any = None
    tokenizer: Any = None
    data: Any = None
    total_steps: int = 0
    compiled: bool = False
    model: Any = None
    autocast_dtype: Any = None
    batcher: Any = None
    val_batches: Any = None
    optimizer: Any = None
    scheduler: Any = None
    scaler: Any = None


def train(cfg: RunConfig, rep: Reporter, resume: bool = False) -> tuple[str, str, dict[str, Any]]:
    """Build the run (data, model, engine, optimizer), announce its plan, train it and save the result."""
    from transformers import set_seed

    from studio.worker.engine import EngineChoices, apply_memory_limit
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import resolve_placement

    set_seed(cfg.training.seed)
    s = Session(cfg, rep, runtime=runtime_for(cfg), placement=resolve_placement(cfg), engine=EngineChoices())
    s.engine.choices.update(s.placement.choices)
    s.engine.choices["memory_limit"] = apply_memory_limit(cfg.training.memory_limit_gb, s.placement.device)
    _load_data(s)
    _load_model(s)
    _make_batches(s)
    _make_optimizer(s)
    _announce_plan(s)
    return _run(s, resume)


def _load_data(s: Session) -> None:
    """Data first: a bad file fails in seconds instead of after the model load, and the run's length
    (which decides whether compiling pays) is known before the kernels are chosen."""
    from studio.worker.batching import Batcher
    from studio.worker.data import prepare_data
    from studio.worker.kernels import decide_compile
    from studio.worker.modeling import load_tokenizer

    t = s.cfg.training
    s.rep.emit("phase", phase="loading_data", detail=s.cfg.data.path or "demo dataset")
    s.tokenizer = load_tokenizer(s.cfg)
    s.data = prepare_data(s.cfg, s.tokenizer, log=s.rep.log)
    steps_per_epoch = Batcher.count_steps(len(s.data.train), t.batch_size, t.grad_accum)
    s.total_steps = t.max_steps or max(1, math.ceil(t.epochs * steps_per_epoch))
    s.compiled, s.engine.choices["compile"] = decide_compile(t.compile, s.placement.device, s.total_steps)


def _load_model(s: Session) -> None:
    """Load the model, make the engine's memory and kernel choices on it, and wrap it with the method."""
    from studio.core.engine_choice import Choice
    from studio.worker.engine import (allocator_choice, decide_batching, decide_checkpointing, decide_cpu_threads,
                                      decide_offload, enable_checkpointing)
    from studio.worker.kernels import apply_liger
    from studio.worker.loss import resolve_loss_impl
    from studio.worker.modeling import load_model
    from studio.worker.precision import decide_adapter_compute, master_weights

    cfg, rep, engine, placement, t = s.cfg, s.rep, s.engine, s.placement, s.cfg.training
    rep.emit("phase", phase="loading_model", detail=cfg.model.path or "demo model")
    load_dtype, master = master_weights(placement, s.runtime)
    if master is not None:
        engine.choices["master_weights"] = master

    def load() -> tuple[Any, dict[str, Choice]]:
        return load_model(cfg, placement, s.runtime.quantization_config(placement.dtype), log=rep.log, dtype=load_dtype)

    model, load_choices = load()
    engine.choices.update(load_choices)
    _threads, engine.choices["cpu_threads"] = decide_cpu_threads(model, placement.device)
    engine.gradient_checkpointing, engine.choices["gradient_checkpointing"] = decide_checkpointing(
        cfg, model, placement.device, rep.log)
    engine.checkpoint_offload, engine.choices["checkpoint_offload"] = decide_offload(
        cfg, placement.device, engine.gradient_checkpointing, model)
    liger = apply_liger(model, placement.device, rep.log, compiled=s.compiled)
    if liger.broke_model:
        model, _ = load()
    engine.choices["kernels"] = liger.choice
    engine.choices["allocator"] = allocator_choice(placement.device)
    attn = getattr(model.config, "_attn_implementation", cfg.model.attn_implementation)
    engine.padding_free, engine.attention_mask, engine.choices["batching"] = decide_batching(
        cfg, model, placement.device, attn)
    if engine.gradient_checkpointing:
        enable_checkpointing(model)
    s.model = model = s.runtime.wrap(model)
    engine.loss_impl, engine.choices["loss"] = resolve_loss_impl(t.loss_impl, model)
    s.autocast_dtype, engine.choices["adapter_compute"] = decide_adapter_compute(
        t.adapter_compute, model, placement.dtype, placement.device)
    if s.runtime.logits_offset():  # soft prompts shift positions; keep the plain padded path
        engine.padding_free, engine.attention_mask = False, True
        engine.choices["batching"] = Choice("padded with an attention mask", "soft-prompt methods prepend virtual tokens")


def _make_batches(s: Session) -> None:
    """The training batcher (length grouping decided on the real lengths), evaluation batches, compiled layers."""
    from studio.core.engine_choice import Choice
    from studio.worker.batching import Batcher, EvalBatches, decide_grouping
    from studio.worker.engine import decide_sdpa_backend
    from studio.worker.kernels import compile_layers

    t, engine = s.cfg.training, s.engine
    pad_id = s.tokenizer.pad_token_id if s.tokenizer.pad_token_id is not None else 0
    s.batcher = Batcher(s.data.train, t.batch_size, t.grad_accum, t.seed, pad_id, padding_free=engine.padding_free,
                        attention_mask=engine.attention_mask, lengths=s.data.train_lengths)
    s.batcher.group_by_length, engine.choices["group_by_length"] = decide_grouping(t.group_by_length, s.batcher)
    engine.choices["attention_backend"] = decide_sdpa_backend(
        s.placement.device, [] if engine.padding_free else s.batcher.lengths)
    if s.compiled and not compile_layers(s.model, s.rep.log):
        engine.choices["compile"] = Choice("off", "no repeated decoder layers found to compile")
    s.val_batches = EvalBatches(s.data.val, t.batch_size, pad_id, engine.attention_mask)


def _make_optimizer(s: Session) -> None:
    import torch
    from transformers import get_scheduler

    from studio.core.engine_choice import Choice

    t = s.cfg.training
    s.optimizer = s.runtime.make_optimizer(s.model)
    s.scheduler = get_scheduler(t.lr_scheduler, s.optimizer, num_training_steps=s.total_steps,
                                num_warmup_steps=math.ceil(t.warmup_ratio * s.total_steps))
    s.scaler = torch.amp.GradScaler("cuda") if s.placement.precision == "fp16" else None
    if s.scaler is not None:
        s.engine.choices["loss_scaling"] = Choice("dynamic", "fp16 gradients would underflow without it")


def _announce_plan(s: Session) -> None:
    """engine.json, the plan event and the engine's choices in the log."""
    from studio.worker.modeling import count_parameters

    t, rep = s.cfg.training, s.rep
    trainable, total_params = count_parameters(s.model)
    s.engine.write(rep.run.path)
    rep.emit("plan", total_steps=s.total_steps, epochs=round(s.total_steps / s.batcher.steps_per_epoch, 3),
             steps_per_epoch=s.batcher.steps_per_epoch, train_rows=len(s.data.train), val_rows=len(s.data.val),
             trainable_params=trainable, total_params=total_params, device=s.placement.device,
             precision=s.placement.precision, effective_batch=t.batch_size * t.grad_accum,
             choices=s.engine.to_json(), data={k: v for k, v in s.data.info.items() if k != "problems"})
    for key, choice in s.engine.choices.items():
        rep.log(f"engine: {key} = {choice.text()}")


def _run(s: Session, resume: bool) -> tuple[str, str, dict[str, Any]]:
    """Restore a checkpoint when resuming, run the loop (checkpointing as it goes), save the result."""
    from studio.core.engine_choice import Choice
    from studio.worker.engine import offload_context
    from studio.worker.kernels import uncompile_layers
    from studio.worker.loop import TrainLoop
    from studio.worker.precision import compute_context
    from studio.worker.resume import Checkpointer, ResumePoint
    from studio.worker.saving import save_trained

    cfg, rep, total_steps = s.cfg, s.rep, s.total_steps
    checkpointer = Checkpointer(run_dir=rep.run.path, cfg=cfg, runtime=s.runtime, model=s.model,
                                tokenizer=s.tokenizer, optimizer=s.optimizer, scheduler=s.scheduler, scaler=s.scaler,
                                total_steps=total_steps, train_rows=len(s.data.train), reporter=rep)
    saved_at: list[int] = []

    def checkpoint(step: int) -> Path | None:
        target = checkpointer.save(step, ResumePoint(step, loop.tokens_done, loop.elapsed_s))
        if target is not None:
            saved_at.append(step)
            rep.emit("checkpoint", step=step, path=str(target))
            rep.emit("artifact", kind="checkpoint", path=str(target))
        return target

    def compile_failed(exc: BaseException) -> bool:
        if not s.compiled:
            return False
        undone = uncompile_layers(s.model)
        rep.log(f"compile failed at the first step ({type(exc).__name__}: {str(exc)[:300]}); "
                f"{undone} layers back to eager, step repeated")
        s.engine.choices["compile"] = Choice("off", f"the compile failed: {type(exc).__name__}; running eager")
        s.engine.write(rep.run.path)
        return True

    if rep.stop_requested():  # asked to stop while loading: there is nothing trained to save
        return "stopped", "Stopped before training started; nothing was saved.", {"steps": 0, "total_steps": total_steps}
    start = ResumePoint()
    if resume:  # last before the loop: it also sets the RNG streams to where the saved run was
        start = checkpointer.restore()
        rep.set_status(resumed_from=start.step)
        rep.emit("phase", phase="resuming", detail=f"from the checkpoint at step {start.step} of {total_steps}")
        rep.log(f"resumed from step {start.step}: weights, optimizer, scheduler and RNG state restored")
    rep.emit("phase", phase="training", detail=f"{total_steps} steps")
    loop = TrainLoop(model=s.model, runtime=s.runtime, optimizer=s.optimizer, scheduler=s.scheduler,
                     batcher=s.batcher, val_batches=s.val_batches, cfg=cfg, reporter=rep, device=s.placement.device,
                     loss_impl=s.engine.loss_impl, total_steps=total_steps, scaler=s.scaler,
                     save_checkpoint=checkpoint, compute=compute_context(s.placement.device, s.autocast_dtype),
                     on_first_step_error=compile_failed,
                     offload=offload_context(s.model) if s.engine.checkpoint_offload else None,
                     start_step=start.step, start_tokens=start.tokens, start_elapsed_s=start.elapsed_s)
    result = loop.run()

    rep.emit("phase", phase="saving", detail="adapter")
    meta = {"step": result.steps_done, "total_steps": total_steps, "status": result.status,
            "final_loss": result.last_loss, "val_loss": result.last_val_loss, "method": cfg.method.name}
    adapter = save_trained(s.runtime, s.model, s.tokenizer, rep.run.adapter_dir, meta)
    rep.emit("artifact", kind="adapter", path=str(adapter))
    if result.status == "stopped" and result.steps_done > start.step and saved_at[-1:] != [result.steps_done]:
        # After the adapter, so a stop that is killed for taking too long still leaves the adapter.
        checkpoint(result.steps_done)
    if result.status == "stopped":
        message = f"Stopped at step {result.steps_done} of {total_steps}; the adapter was saved."
    else:
        message = f"Trained {result.steps_done} steps; final loss {result.last_loss:.4f}."
    extra = {"final_loss": result.last_loss, "val_loss": result.last_val_loss, "steps": result.steps_done,
             "total_steps": total_steps}
    return result.status, message, extra
