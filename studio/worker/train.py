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


def train(cfg: RunConfig, rep: Reporter, resume: bool = False) -> tuple[str, str, dict[str, Any]]:
    import torch
    from transformers import get_scheduler, set_seed

    from studio.core.engine_choice import Choice
    from studio.worker.batching import Batcher, EvalBatches, decide_grouping
    from studio.worker.data import prepare_data
    from studio.worker.engine import (
        EngineChoices, allocator_choice, apply_memory_limit, decide_batching, decide_checkpointing,
        decide_cpu_threads, decide_offload, decide_sdpa_backend, enable_checkpointing, offload_context,
    )
    from studio.worker.kernels import apply_liger, compile_layers, decide_compile, uncompile_layers
    from studio.worker.loop import TrainLoop
    from studio.worker.loss import resolve_loss_impl
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import count_parameters, load_model, load_tokenizer, resolve_placement
    from studio.worker.precision import compute_context, decide_adapter_compute, master_weights
    from studio.worker.resume import Checkpointer, ResumePoint
    from studio.worker.saving import save_trained

    t = cfg.training
    set_seed(t.seed)
    runtime = runtime_for(cfg)
    placement = resolve_placement(cfg)
    engine = EngineChoices()
    engine.choices.update(placement.choices)
    engine.choices["memory_limit"] = apply_memory_limit(t.memory_limit_gb, placement.device)  # before any load

    # Data first: a bad file fails in seconds instead of after the model load, and the run's length
    # (which decides whether compiling pays) is known before the kernels are chosen.
    rep.emit("phase", phase="loading_data", detail=cfg.data.path or "demo dataset")
    tokenizer = load_tokenizer(cfg)
    data = prepare_data(cfg, tokenizer, log=rep.log)
    steps_per_epoch = Batcher.count_steps(len(data.train), t.batch_size, t.grad_accum)
    total_steps = t.max_steps or max(1, math.ceil(t.epochs * steps_per_epoch))
    compiled, engine.choices["compile"] = decide_compile(t.compile, placement.device, total_steps)

    rep.emit("phase", phase="loading_model", detail=cfg.model.path or "demo model")
    load_dtype, master = master_weights(placement, runtime)
    if master is not None:
        engine.choices["master_weights"] = master
    model, load_choices = load_model(cfg, placement, runtime.quantization_config(placement.dtype), log=rep.log,
                                     dtype=load_dtype)
    engine.choices.update(load_choices)
    _threads, engine.choices["cpu_threads"] = decide_cpu_threads(model, placement.device)
    engine.gradient_checkpointing, engine.choices["gradient_checkpointing"] = decide_checkpointing(
        cfg, model, placement.device, rep.log)
    engine.checkpoint_offload, engine.choices["checkpoint_offload"] = decide_offload(
        cfg, placement.device, engine.gradient_checkpointing, model)
    liger = apply_liger(model, placement.device, rep.log, compiled=compiled)
    if liger.broke_model:
        model, _ = load_model(cfg, placement, runtime.quantization_config(placement.dtype), log=rep.log,
                              dtype=load_dtype)
    engine.choices["kernels"] = liger.choice
    engine.choices["allocator"] = allocator_choice(placement.device)
    attn = getattr(model.config, "_attn_implementation", cfg.model.attn_implementation)
    engine.padding_free, engine.attention_mask, engine.choices["batching"] = decide_batching(
        cfg, model, placement.device, attn)
    if engine.gradient_checkpointing:
        enable_checkpointing(model)
    model = runtime.wrap(model)
    engine.loss_impl, engine.choices["loss"] = resolve_loss_impl(t.loss_impl, model)
    autocast_dtype, engine.choices["adapter_compute"] = decide_adapter_compute(
        t.adapter_compute, model, placement.dtype, placement.device)
    if runtime.logits_offset():  # soft prompts shift positions; keep the plain padded path
        engine.padding_free, engine.attention_mask = False, True
        engine.choices["batching"] = Choice("padded with an attention mask", "soft-prompt methods prepend virtual tokens")

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batcher = Batcher(data.train, t.batch_size, t.grad_accum, t.seed, pad_id, padding_free=engine.padding_free,
                      attention_mask=engine.attention_mask, lengths=data.train_lengths)
    batcher.group_by_length, engine.choices["group_by_length"] = decide_grouping(t.group_by_length, batcher)
    engine.choices["attention_backend"] = decide_sdpa_backend(
        placement.device, [] if engine.padding_free else batcher.lengths)
    if compiled and not compile_layers(model, rep.log):
        engine.choices["compile"] = Choice("off", "no repeated decoder layers found to compile")

    def compile_failed(exc: BaseException) -> bool:
        if not compiled:
            return False
        undone = uncompile_layers(model)
        rep.log(f"compile failed at the first step ({type(exc).__name__}: {str(exc)[:300]}); "
                f"{undone} layers back to eager, step repeated")
        engine.choices["compile"] = Choice("off", f"the compile failed: {type(exc).__name__}; running eager")
        engine.write(rep.run.path)
        return True
    val_batches = EvalBatches(data.val, t.batch_size, pad_id, engine.attention_mask)

    optimizer = runtime.make_optimizer(model)
    scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=math.ceil(t.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    scaler = torch.amp.GradScaler("cuda") if placement.precision == "fp16" else None
    if scaler is not None:
        engine.choices["loss_scaling"] = Choice("dynamic", "fp16 gradients would underflow without it")
    trainable, total_params = count_parameters(model)
    engine.write(rep.run.path)
    rep.emit("plan", total_steps=total_steps, epochs=round(total_steps / batcher.steps_per_epoch, 3),
             steps_per_epoch=batcher.steps_per_epoch, train_rows=len(data.train), val_rows=len(data.val),
             trainable_params=trainable, total_params=total_params, device=placement.device,
             precision=placement.precision, effective_batch=t.batch_size * t.grad_accum,
             choices=engine.to_json(), data={k: v for k, v in data.info.items() if k != "problems"})
    for key, choice in engine.choices.items():
        rep.log(f"engine: {key} = {choice.text()}")

    checkpointer = Checkpointer(run_dir=rep.run.path, cfg=cfg, runtime=runtime, model=model, tokenizer=tokenizer,
                                optimizer=optimizer, scheduler=scheduler, scaler=scaler, total_steps=total_steps,
                                train_rows=len(data.train), reporter=rep)

    saved_at: list[int] = []

    def checkpoint(step: int) -> Path | None:
        target = checkpointer.save(step, ResumePoint(step, loop.tokens_done, loop.elapsed_s))
        if target is not None:
            saved_at.append(step)
            rep.emit("checkpoint", step=step, path=str(target))
            rep.emit("artifact", kind="checkpoint", path=str(target))
        return target

    if rep.stop_requested():  # asked to stop while loading: there is nothing trained to save
        return "stopped", "Stopped before training started; nothing was saved.", {"steps": 0, "total_steps": total_steps}
    start = ResumePoint()
    if resume:  # last before the loop: it also sets the RNG streams to where the saved run was
        start = checkpointer.restore()
        rep.set_status(resumed_from=start.step)
        rep.emit("phase", phase="resuming", detail=f"from the checkpoint at step {start.step} of {total_steps}")
        rep.log(f"resumed from step {start.step}: weights, optimizer, scheduler and RNG state restored")
    rep.emit("phase", phase="training", detail=f"{total_steps} steps")
    loop = TrainLoop(model=model, runtime=runtime, optimizer=optimizer, scheduler=scheduler, batcher=batcher,
                     val_batches=val_batches, cfg=cfg, reporter=rep, device=placement.device,
                     loss_impl=engine.loss_impl, total_steps=total_steps, scaler=scaler, save_checkpoint=checkpoint,
                     compute=compute_context(placement.device, autocast_dtype), on_first_step_error=compile_failed,
                     offload=offload_context(model) if engine.checkpoint_offload else None,
                     start_step=start.step, start_tokens=start.tokens, start_elapsed_s=start.elapsed_s)
    result = loop.run()

    rep.emit("phase", phase="saving", detail="adapter")
    meta = {"step": result.steps_done, "total_steps": total_steps, "status": result.status,
            "final_loss": result.last_loss, "val_loss": result.last_val_loss, "method": cfg.method.name}
    adapter = save_trained(runtime, model, tokenizer, rep.run.adapter_dir, meta)
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
