"""The optimisation loop: accumulate, clip, step, report, evaluate, checkpoint, stop on request.

It syncs with the GPU once per logged step (one ``tolist()`` of the windowed loss and gradient
norm); everything else it reports (tokens, times, memory counters) is known on the host.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from studio.worker.batching import Batcher, MicroBatch
from studio.worker.errors import WorkerError
from studio.worker.loss import loss_sum

# A time-based checkpoint waits at least this many times as long as the last one took to write, so
# saving stays under ~5% of the training time however large the state (full fine-tuning of big models).
SAVE_TIME_FACTOR = 20


class StepProfiler:
    """``STUDIO_PROFILE_STEPS=A-B`` profiles optimizer steps A..B with torch.profiler and writes the
    busiest operators (host time and GPU time) to RUN_DIR/profile.txt: how a slow run shows why."""

    def __init__(self, first: int = 0, last: int = -1, out: Optional[Path] = None):
        self.first, self.last, self.out = first, last, out
        self._prof = None

    @classmethod
    def from_env(cls, run_dir: Optional[Path]) -> "StepProfiler":
        import os

        spec = os.environ.get("STUDIO_PROFILE_STEPS", "")
        if not spec or run_dir is None:
            return cls()
        first, _, last = spec.partition("-")
        return cls(int(first), int(last or first), Path(run_dir) / "profile.txt")

    def before(self, step: int) -> None:
        if step == self.first and self.out is not None:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self._prof = profile(activities=acts, record_shapes=False)
            self._prof.__enter__()

    def after(self, step: int) -> None:
        if self._prof is None or step != self.last:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._prof.__exit__(None, None, None)
        table = self._prof.key_averages()
        parts = [f"steps {self.first}-{self.last}", table.table(sort_by="self_cpu_time_total", row_limit=35)]
        if torch.cuda.is_available():
            parts.append(table.table(sort_by="self_cuda_time_total", row_limit=35))
        self.out.write_text("\n\n".join(parts), encoding="utf-8")
        self._prof = None


class TrainingDiverged(WorkerError):
    """The loss is NaN or infinite: the run stops as failed instead of training on garbage."""

    kind = "diverged"


def first_nonfinite_parameter(model: Any) -> str:
    """The first frozen (loaded, not trained) parameter holding NaN or inf, by its name in the model files.

    Trained parameters are left out: after a NaN step the optimizer has spread the NaN into them,
    while the loaded weights show whether the files were bad to begin with.
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad and p.is_floating_point() and not bool(torch.isfinite(p).all()):
                return name.replace("base_model.model.", "", 1).replace(".base_layer", "")
    return ""


@dataclass
class LoopResult:
    status: str  # "completed" or "stopped"
    steps_done: int
    last_loss: Optional[float]
    last_val_loss: Optional[float]


class TrainLoop:
    def __init__(self, *, model: Any, runtime: Any, optimizer: Any, scheduler: Any, batcher: Batcher,
                 val_batches: Any, cfg: Any, reporter: Any, device: str, loss_impl: str,
                 total_steps: int, scaler: Any = None,
                 save_checkpoint: Optional[Callable[[int], Path]] = None,
                 compute: Callable[[], Any] = contextlib.nullcontext,
                 on_first_step_error: Optional[Callable[[BaseException], bool]] = None,
                 offload: Optional[Callable[[], Any]] = None,
                 start_step: int = 0, start_tokens: int = 0, start_elapsed_s: float = 0.0):
        self.model = model
        self.runtime = runtime
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.batcher = batcher
        self.val_batches = val_batches
        self.t = cfg.training
        self.reporter = reporter
        self.device = device
        self.loss_impl = loss_impl
        self.total_steps = total_steps
        self.scaler = scaler
        self.save_checkpoint = save_checkpoint
        self.compute = compute  # the context of every forward pass (autocast for low-precision adapters)
        # The context of every training forward pass and loss (not backward, not evaluation): with
        # offloaded checkpoints, PyTorch's save_on_cpu (studio/worker/engine.py offload_context).
        self.offload = offload or contextlib.nullcontext
        self.profiler = StepProfiler.from_env(getattr(getattr(reporter, "run", None), "path", None))
        # Called when the very first step raises (a compiled layer that fails to compile): True = it
        # undid the cause, so the step is run again from clean gradients.
        self.on_first_step_error = on_first_step_error
        # A resumed run starts after its checkpoint's step; its counters continue (studio/worker/resume.py).
        self.start_step = start_step
        self.tokens_done = start_tokens
        self.elapsed_s = start_elapsed_s
        self._last_save_at = 0.0
        self._last_save_s = 0.0
        self._last_finite_loss = math.nan
        # Everything the optimizer may update (clipping skips parameters without a gradient): LISA
        # switches layers on and off during the run, so "requires_grad now" would miss some later.
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        offset = getattr(runtime, "logits_offset", None)
        self.logits_offset = offset() if callable(offset) else 0

    # ---- one optimizer step ----------------------------------------------------------------
    def _step(self, micro_batches: list[MicroBatch]) -> tuple[Any, Optional[Any]]:
        denom = max(1, sum(mb.loss_tokens for mb in micro_batches))
        step_loss = torch.zeros((), device=self.device)
        for mb in micro_batches:
            mb = mb.to(self.device)
            with self.compute(), self.offload():
                loss = loss_sum(self.model, mb, self.loss_impl, self.logits_offset) / denom
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            step_loss += loss.detach()
        penalty = self.runtime.penalty(self.model)
        if penalty is not None:  # once per optimizer step; the reported loss stays the cross-entropy
            (self.scaler.scale(penalty) if self.scaler else penalty).backward()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = None
        if self.t.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.t.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, grad_norm

    def _first_step(self, micro_batches: list[MicroBatch]) -> tuple[Any, Optional[Any]]:
        try:
            return self._step(micro_batches)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - only a cause the engine can undo is retried
            if self.on_first_step_error is None or not self.on_first_step_error(e):
                raise
        self.optimizer.zero_grad(set_to_none=True)
        return self._step(micro_batches)

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> LoopResult:
        self.model.train()  # transformers skips gradient checkpointing in eval mode
        rep, total = self.reporter, self.total_steps
        start = window_start = self._last_save_at = time.perf_counter()
        window_loss = torch.zeros((), device=self.device)
        window_norm = torch.zeros((), device=self.device)
        window_steps = window_tokens = window_useful = 0
        useful_total = self.tokens_done
        elapsed_before = self.elapsed_s
        last_loss = last_val = None
        step = self.start_step
        status = "completed"
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        steps = self.batcher.steps(total, start_step=self.start_step)
        for step_index, (_epoch, epoch_pos, micro) in enumerate(steps, start=self.start_step):
            step = step_index + 1
            self.profiler.before(step)
            loss, norm = self._first_step(micro) if step_index == self.start_step else self._step(micro)
            self.profiler.after(step)
            self.runtime.on_step_end(self.model, step, total)
            window_loss += loss
            if norm is not None:
                window_norm += norm.float()
            window_steps += 1
            window_tokens += sum(mb.tokens for mb in micro)
            useful = sum(mb.useful_tokens for mb in micro)
            window_useful += useful
            useful_total += useful
            self.tokens_done = useful_total
            self.elapsed_s = elapsed_before + time.perf_counter() - start
            stopping = rep.stop_requested()
            if step % self.t.logging_steps == 0 or step == total or stopping:
                values = torch.stack([window_loss, window_norm]).tolist()  # the one sync per logged step
                now = time.perf_counter()
                span = max(now - window_start, 1e-9)
                elapsed = elapsed_before + now - start
                last_loss = values[0] / window_steps
                if math.isfinite(last_loss):
                    self._last_finite_loss = last_loss
                event = dict(
                    step=step, total_steps=total, epoch=round(epoch_pos, 4), loss=round(last_loss, 6),
                    lr=self.scheduler.get_last_lr()[0],
                    grad_norm=round(values[1] / window_steps, 6) if norm is not None else None,
                    tokens=useful_total, tokens_per_s=round(window_useful / span, 1),
                    padded_tokens_per_s=round(window_tokens / span, 1),
                    step_time_s=round(span / window_steps, 5), elapsed_s=round(elapsed, 2),
                    eta_s=round((now - start) / (step - self.start_step) * (total - step), 1),
                )
                if not math.isfinite(last_loss):
                    raise self._diverged(step, last_loss)
                event.update(self._memory())
                rep.emit("step", **event)
                window_loss.zero_()
                window_norm.zero_()
                window_steps = window_tokens = window_useful = 0
                window_start = time.perf_counter()
            if len(self.val_batches) and self.t.eval_steps and step % self.t.eval_steps == 0 and step != total:
                last_val = self.evaluate(step)
            if self._checkpoint_due(step):
                if window_steps and not math.isfinite(window_loss.item()):  # never save weights a NaN reached
                    raise self._diverged(step, window_loss.item())
                began = time.perf_counter()
                self.save_checkpoint(step)
                self._last_save_at = time.perf_counter()
                self._last_save_s = self._last_save_at - began
            if stopping and step < total:
                rep.log(f"stopping at step {step} of {total} ({rep.stop_reason()})")
                status = "stopped"
                break
        if len(self.val_batches):
            last_val = self.evaluate(step, resume=False)
        return LoopResult(status, step, last_loss, last_val)

    def _diverged(self, step: int, loss: float) -> "TrainingDiverged":
        """The error that ends a run whose loss is no longer a number, with its likely cause."""
        if step <= self.start_step + self.t.logging_steps:
            bad = first_nonfinite_parameter(self.model)
            if bad:
                return TrainingDiverged(
                    f"The loss is {loss} from the first step because the model's weights hold NaN or infinite "
                    f"values (first: {bad}). The model files are damaged or were saved from a run that diverged; "
                    "download or copy the model again.", kind="model")
        if not math.isfinite(self._last_finite_loss):
            return TrainingDiverged(
                f"The loss is {loss} at step {step}, before any finite loss was seen: check the data and the model "
                f"(a learning rate of {self.t.learning_rate:g} cannot cause it at the first step).")
        return TrainingDiverged(
            f"Training diverged: the loss became {loss} at step {step} (it was {self._last_finite_loss:.4f} at the "
            f"last report), so nothing after the last checkpoint was saved. Lower the learning rate (e.g. "
            f"{self.t.learning_rate:g} -> {self.t.learning_rate / 3:.1g}), keep Gradient clipping on"
            + (", or train in bf16 instead of fp16" if self.scaler is not None else "") + ", and start again.")

    def _checkpoint_due(self, step: int) -> bool:
        """Every save_steps steps, and after save_minutes of training since the last checkpoint."""
        if not self.save_checkpoint or step == self.total_steps:
            return False
        if self.t.save_steps and step % self.t.save_steps == 0:
            return True
        minutes = getattr(self.t, "save_minutes", 0)
        since = time.perf_counter() - self._last_save_at
        return bool(minutes) and since >= max(minutes * 60, SAVE_TIME_FACTOR * self._last_save_s)

    def evaluate(self, step: int, resume: bool = True) -> float:
        self.reporter.emit("phase", phase="evaluating", detail=f"validation loss at step {step}")
        self.model.eval()
        total = torch.zeros((), device=self.device)
        count = 0
        with torch.no_grad():
            for mb in self.val_batches:
                with self.compute():
                    total += loss_sum(self.model, mb.to(self.device), self.loss_impl, self.logits_offset)
                count += mb.loss_tokens
        self.model.train()
        val = total.item() / max(1, count)
        self.reporter.emit("eval", step=step, val_loss=round(val, 6))
        if resume:
            self.reporter.emit("phase", phase="training", detail="")
        return val

    def _memory(self) -> dict[str, int]:
        if self.device != "cuda":
            return {}
        return dict(mem_allocated=torch.cuda.memory_allocated(), mem_reserved=torch.cuda.memory_reserved(),
                    mem_peak_allocated=torch.cuda.max_memory_allocated(),
                    mem_peak_reserved=torch.cuda.max_memory_reserved())
