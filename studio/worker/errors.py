"""Turn whatever went wrong in a worker into an error kind and a message that says what to do.

Kinds (the protocol's ``error.kind``): ``oom``, ``data``, ``model``, ``config``, ``disk``,
``diverged`` (the loss became NaN/inf) and ``internal``; only ``internal`` means a bug in the
studio, and only it needs the traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


class WorkerError(Exception):
    """A failure with a known kind; the message is for the user as it is."""

    kind = "internal"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind:
            self.kind = kind


class ModelLoadError(WorkerError):
    kind = "model"


OOM_ADVICE = ("Out of GPU memory. Try, in this order: turn gradient checkpointing on, lower the "
              "micro-batch (raise gradient accumulation to keep the effective batch), shorten Max "
              "length, or switch to QLoRA (4-bit base).")


def classify(exc: BaseException, cfg: Any = None, writing: Optional[Path] = None,
             then: str = "start again") -> tuple[str, str]:
    """(kind, message) for an exception raised while training or exporting.

    ``writing`` is the folder the job writes (the run folder, an export's destination): a failure
    on its disk that is a full disk in disguise is reported as one, naming that folder and the
    space left. ``then`` says what to do once there is room ("start again", "press Resume ...").
    """
    from studio.core.config import ConfigError
    from studio.core.data import DataError
    from studio.core.disk import disk_full_message, is_disk_full

    if isinstance(exc, WorkerError):
        return exc.kind, str(exc)
    if isinstance(exc, DataError):
        return "data", str(exc)
    if isinstance(exc, ConfigError):
        return "config", str(exc)
    if _is_oom(exc):
        return "oom", _oom_message(exc, cfg)
    if is_disk_full(exc, writing):
        where = writing or getattr(exc, "filename", None) or "the run folder"
        return "disk", f"{disk_full_message(where)} Free some space (or choose another output folder), then {then}."
    if isinstance(exc, MemoryError):
        return "oom", "Out of system memory (RAM). Close other programs, lower the micro-batch or Max length."
    return "internal", f"{type(exc).__name__}: {exc}"


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "cuda_error_out_of_memory" in text)


def _oom_message(exc: BaseException, cfg: Any) -> str:
    if cfg is None:
        return OOM_ADVICE
    t = cfg.training
    hints = []
    if t.gradient_checkpointing != "on":
        hints.append("set Gradient checkpointing to 'on'")
    if t.batch_size > 1:
        hints.append(f"lower Micro-batch from {t.batch_size} to {max(1, t.batch_size // 2)} and double Gradient accumulation")
    if t.max_seq_len > 512:
        hints.append(f"shorten Max length from {t.max_seq_len} to {t.max_seq_len // 2}")
    if cfg.method.name in ("lora", "dora"):
        hints.append("switch the method to QLoRA (4-bit base)")
    steps = "; ".join(hints) if hints else "use a smaller model"
    return f"Out of GPU memory. What to change: {steps}."
