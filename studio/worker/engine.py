"""The training engine's automatic decisions, each made once, with its reason.

Gradient checkpointing (and whether its checkpoints wait in CPU memory) and the loss
implementation are decided here, and every decision is recorded in ``choices`` (shown in the plan
event and written to ``RUN_DIR/engine.json``), so a user can see what "auto" turned into and a
benchmark can compare engines honestly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from studio.core.config import RunConfig
from studio.core.engine_choice import SET_OFF, SET_ON, Choice
from studio.core.engine_rules import ALLOC_ENV, EXPANDABLE, OFFLOAD_MAX_COST, OFFLOAD_MAX_RAM_SHARE, offload_cost


class ChoiceTable(dict):
    """key -> Choice; a choice stored under a key learns the setting that overrides it (engine_choice.SETTINGS)."""

    def __setitem__(self, key: str, choice: Choice) -> None:
        if not isinstance(choice, Choice):
            raise TypeError(f"engine choice {key!r} must be a Choice, not {type(choice).__name__}")
        super().__setitem__(key, choice.for_key(key))

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, choice in dict(*args, **kwargs).items():
            self[key] = choice


@dataclass
class EngineChoices:
    gradient_checkpointing: bool = False
    checkpoint_offload: bool = False  # the checkpoints wait in pinned CPU memory (decide_offload)
    loss_impl: str = "standard"
    padding_free: bool = False
    attention_mask: bool = True
    choices: "ChoiceTable" = field(default_factory=lambda: ChoiceTable())

    def to_json(self) -> dict[str, dict[str, str]]:
        return {key: choice.to_json() for key, choice in self.choices.items()}

    def write(self, run_dir: Path) -> None:
        (Path(run_dir) / "engine.json").write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")



def configure_allocator() -> None:
    """Expandable segments for PyTorch's CUDA caching allocator, unless the user configured it.

    With checkpointing and compiled layers, blocks of many sizes come and go every step; fixed
    segments leave gaps that the allocator cannot reuse (measured: 17 GiB allocated, 31 GiB
    reserved on Llama-3.1-8B). Expandable segments grow in place, so what the GPU shows stays close
    to what is in use. Linux only (PyTorch's support)."""
    import os
    import sys

    if sys.platform.startswith("linux"):
        os.environ.setdefault(ALLOC_ENV, EXPANDABLE)


def allocator_choice(device: str) -> Choice:
    import os

    if device != "cuda":
        return Choice("default", "CPU training")
    value = os.environ.get(ALLOC_ENV, "")
    if value == EXPANDABLE:
        return Choice("expandable segments", "auto: reserved memory stays close to allocated; no fragmentation gaps")
    return Choice(f"{ALLOC_ENV}={value}", "set in the environment") if value else \
        Choice("PyTorch default caching allocator")


def apply_memory_limit(limit_gb: float, device: str) -> Choice:
    """Hold this process to the run's GPU memory limit (training.memory_limit_gb): PyTorch's
    allocator then raises out-of-memory at the limit instead of taking memory others need."""
    if not limit_gb:
        return Choice("none", "the GPU's free memory minus a margin")
    if device != "cuda":
        return Choice(f"{limit_gb:g} GB", "set in the config; not enforced on the CPU")
    import torch

    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    fraction = min(1.0, limit_gb * 1e9 / total)
    torch.cuda.set_per_process_memory_fraction(fraction)
    return Choice(f"{limit_gb:g} GB", f"set in the config; enforced: {fraction:.0%} of this GPU's {total / 1e9:.0f} GB")


def decide_sdpa_backend(device: str, lengths: Any) -> Choice:
    """Keep PyTorch's SDPA backend choice for fixed-length batches; leave out cuDNN's when lengths vary.

    cuDNN's fused attention builds an execution plan for every new sequence length: measured on an
    H100 with mixed-length data, ~130 ms of CPU per step (the GPU itself needed ~30 ms), so the step
    waited on the host. The flash kernel takes any length without planning."""
    if device != "cuda":
        return Choice("PyTorch default", "CPU")
    import torch

    if not lengths or min(lengths) == max(lengths):
        return Choice("PyTorch default", "every batch has the same length; cuDNN's plan is built once")
    if hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        torch.backends.cuda.enable_cudnn_sdp(False)
    return Choice("flash / memory-efficient, cuDNN left out",
                  "auto: lengths vary, and cuDNN plans every new length on the CPU: ~130 ms a step measured")


def decide_checkpointing(cfg: RunConfig, model: Any, device: str, log: Callable[[str], None]) -> tuple[bool, Choice]:
    setting = cfg.training.gradient_checkpointing
    if setting == "on":
        return True, SET_ON
    if setting == "off":
        return False, SET_OFF
    if cfg.training.preset == "memory_saver":
        return True, Choice("on", "memory-saver preset: the smallest peak memory, activations recomputed in backward")
    verdict = _ask_vram_estimator(cfg, model, device, log)
    if verdict is not None:
        return verdict
    if device != "cuda":
        return False, Choice("off", "auto: CPU training has plenty of memory for activations")
    need, free = _activation_bytes(cfg, model), _free_cuda_bytes()
    if need > 0.7 * free:
        return True, Choice("on", f"auto: activations need ~{need / 2**30:.1f} GiB without it, "
                                  f"{free / 2**30:.1f} GiB are free")
    return False, Choice("off", f"auto: activations ~{need / 2**30:.1f} GiB fit in {free / 2**30:.1f} GiB free")


def _ask_vram_estimator(cfg: RunConfig, model: Any, device: str, log: Callable[[str], None]):
    """The VRAM estimator's verdict on 'auto' checkpointing for the memory this GPU has, if it gives one."""
    if device != "cuda":
        return None
    try:
        from studio.core.models import resolve_facts
        from studio.core.vram import budget_for, machine_here, resolve_auto
    except ImportError:
        return None
    try:
        import torch

        free, total = torch.cuda.mem_get_info()
        # What others hold = used minus what this process already holds (the loaded model).
        used_by_others = max(0, total - free - torch.cuda.memory_reserved())
        facts = resolve_facts(cfg.model.source, cfg.model.path)
        decision = resolve_auto(cfg, facts, budget_for(total, used_by_others), machine=machine_here(),
                                bf16_supported=torch.cuda.is_bf16_supported())
    except Exception as e:  # an estimator problem must not stop training; fall back to measuring
        log(f"VRAM estimator could not decide gradient checkpointing ({type(e).__name__}: {e}); measuring instead")
        return None
    on = bool(decision.gradient_checkpointing)
    return on, Choice("on" if on else "off", f"auto, VRAM estimator: {decision.reason}")


def _activation_bytes(cfg: RunConfig, model: Any) -> float:
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    hidden = getattr(c, "hidden_size", 4096)
    layers = getattr(c, "num_hidden_layers", 32)
    tokens = cfg.training.batch_size * cfg.training.max_seq_len
    # ~34 bytes per hidden unit per token per layer in bf16 without checkpointing (Korthikanti et al.,
    # fused attention so no s^2 term), a rough but safe-side figure.
    return float(tokens * hidden * layers * 34)


def _free_cuda_bytes() -> float:
    import torch

    free, _total = torch.cuda.mem_get_info()
    return float(free)


def enable_checkpointing(model: Any) -> None:
    """Turn on non-reentrant checkpointing; inputs must require grad for PEFT's frozen embeddings."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()


def decide_offload(cfg: RunConfig, device: str, checkpointing: bool, model: Any = None,
                   free_ram: float | None = None) -> tuple[bool, Choice]:
    """Whether the checkpointed layers' inputs wait for backward in pinned CPU memory.

    With checkpointing, the input of every decoder layer is what stays on the GPU between forward
    and backward (batch x length x hidden each); offloading keeps only the one being recomputed.
    'auto' leaves it off when that pinned memory would take more than half of the free RAM (page-
    locked memory cannot be swapped out, and the rest of the machine needs room)."""
    if not checkpointing:
        return False, Choice("off", "needs gradient checkpointing")
    if device == "cpu":
        return False, Choice("off", "CPU training: activations are already in CPU memory")
    setting = getattr(cfg.training, "offload_checkpoints", "auto")
    if setting == "on":
        return True, SET_ON
    if setting == "off":
        return False, SET_OFF
    if cfg.training.preset != "memory_saver":
        return False, Choice("off", "auto: only the memory-saver preset offloads; the checkpoints stay on the GPU")
    need = _offload_bytes(cfg, model) if model is not None else 0.0
    cost = _offload_cost(cfg, model)
    if cost is not None and cost > OFFLOAD_MAX_COST:
        return False, Choice("off", f"auto: copying the checkpoints to and from the CPU would cost ~{cost:.0%} of "
                                    f"each step for layers this size, more than the preset's {OFFLOAD_MAX_COST:.0%}; "
                                    f"offload_checkpoints: on trades that for ~{need / 2**30:.1f} GiB of GPU memory")
    if free_ram is None and need:
        import psutil

        free_ram = float(psutil.virtual_memory().available)
    if need and free_ram is not None and need > OFFLOAD_MAX_RAM_SHARE * free_ram:
        return False, Choice("off", f"auto: the checkpoints would take ~{need / 2**30:.1f} GiB of pinned RAM; "
                                    f"{free_ram / 2**30:.1f} GiB of RAM is free")
    size = f" (~{need / 2**30:.1f} GiB)" if need else ""
    return True, Choice("on", f"memory-saver preset: each layer's checkpointed input waits in pinned CPU memory{size}, "
                              "copied back just before the layer is recomputed")


def _offload_cost(cfg: RunConfig, model: Any) -> float | None:
    """The estimator's share of the step the copies would add (None: the model's shape is unknown)."""
    if model is None:
        return None
    try:
        from studio.core.models import facts_from_config

        facts = facts_from_config(model.config.to_dict())
    except Exception:  # a config the estimator cannot read: no cost estimate, the preset decides
        return None
    return offload_cost(facts, cfg.training.max_seq_len)


def _offload_bytes(cfg: RunConfig, model: Any) -> float:
    """Pinned RAM the offloaded checkpoints take: every layer's input in the compute dtype (2 bytes)
    and the final norm's fp32 input, for the largest micro-batch."""
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    hidden = getattr(c, "hidden_size", 4096)
    layers = getattr(c, "num_hidden_layers", 32)
    tokens = cfg.training.batch_size * cfg.training.max_seq_len
    return float(tokens * hidden * (2 * layers + 4))


def offload_context(model: Any) -> Callable[[], Any]:
    """A factory of PyTorch's ``save_on_cpu`` contexts for the forward pass and the loss.

    Outside the checkpointed layers the tensors autograd saves are mainly the layers' inputs
    (non-reentrant checkpointing saves them through the hooks active around the layer call), so
    save_on_cpu moves exactly those to pinned CPU memory; inside a layer checkpoint's own hooks
    take over. Tensors that share storage with a parameter (a frozen output layer saved by the
    standard loss's matmul) stay where they are: copying resident weights out and back would
    cost time and, in backward, a second copy on the GPU."""
    import torch

    params = {_storage(p) for p in model.parameters()} - {None}

    def make() -> Any:
        hooks = torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available())
        pack, unpack = hooks.pack_hook, hooks.unpack_hook

        def pack_unless_weight(t: Any) -> Any:
            return t if _storage(t) in params else pack(t)

        def unpack_unless_weight(packed: Any) -> Any:
            return packed if isinstance(packed, torch.Tensor) else unpack(packed)

        hooks.pack_hook, hooks.unpack_hook = pack_unless_weight, unpack_unless_weight
        return hooks

    return make


def _storage(t: Any) -> Any:
    """Where a tensor's memory starts (None for tensors without plain storage, e.g. subclasses)."""
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, AttributeError):
        return None


def decide_cpu_threads(model: Any, device: str) -> tuple[int, Choice]:
    """Intra-op threads for CPU training: one for tiny models, where thread hand-offs cost more than
    the matrix products they split (the demo runs ~6x faster on a busy 2-core machine)."""
    import torch

    current = torch.get_num_threads()
    if device != "cpu":
        return current, Choice(str(current), "GPU training")
    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(c, "hidden_size", 4096) <= 256:
        torch.set_num_threads(1)
        return 1, Choice("1", "auto: a tiny model; splitting its small matrix products across threads is slower")
    return current, Choice(str(current), "PyTorch default for this CPU")


def probe_attention(model: Any, device: str) -> tuple[bool, bool, str]:
    """Check on the real model, with a few tokens, that (1) right padding without an attention mask
    leaves real tokens untouched and (2) position ids that restart keep packed segments apart.

    Returns (mask_free_padding_ok, segments_ok, detail). A model whose attention does not behave
    (custom code, exotic masks) keeps the attention mask and gets no packing by position ids.
    """
    import torch

    c = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    vocab = int(getattr(c, "vocab_size", 0) or 0)
    if vocab < 8:
        return False, False, "unknown vocabulary size"
    g = torch.Generator().manual_seed(0)
    a = torch.randint(3, vocab, (1, 6), generator=g)
    b = torch.randint(3, vocab, (1, 4), generator=g)
    was_training = model.training
    model.eval()

    def logits(ids: Any, positions: Any = None) -> Any:
        kw = {"input_ids": ids.to(device), "use_cache": False}
        if positions is not None:
            kw["position_ids"] = positions.to(device)
        return model(**kw).logits.float().cpu()

    try:
        with torch.no_grad():
            la, lb = logits(a), logits(b)
            packed = logits(torch.cat([a, b], 1), torch.tensor([list(range(6)) + list(range(4))]))
            padded = logits(torch.cat([b, torch.zeros((1, 2), dtype=torch.long)], 1))
    except Exception as e:  # a model that cannot even take position ids keeps the safe path
        return False, False, f"probe failed ({type(e).__name__}: {e})"
    finally:
        model.train(was_training)
    tol = 1e-3 if next(model.parameters()).dtype == torch.float32 else 5e-2

    def close(x: Any, y: Any) -> bool:
        return float((x - y).abs().max()) <= tol * max(1.0, float(y.abs().max()))

    mask_free = close(padded[:, :4], lb)
    segments = close(packed[:, :6], la) and close(packed[:, 6:], lb)
    return mask_free, segments, f"right padding invisible: {mask_free}; segments kept apart: {segments}"


def decide_batching(cfg: RunConfig, model: Any, device: str, attn: str) -> tuple[bool, bool, Choice]:
    """(padding_free, attention_mask, reason).

    Padded rows without a mask are the default: exact, and SDPA keeps its mask-free causal kernel.
    One padding-free row per micro-batch needs a variable-length kernel (flash_attention_2);
    with SDPA a packed row costs (batch x length)^2 attention, more than the padding it saves.
    """
    mask_free, segments, detail = probe_attention(model, device)
    if attn == "flash_attention_2" and segments:
        return True, False, Choice("padding-free", f"one row per micro-batch, positions restart per example; {detail}")
    if mask_free:
        extra = "" if segments else "; packed examples would see each other, so packing is unsafe here"
        return False, False, Choice("padded to the longest, no attention mask",
                                    f"causal: real tokens never see the padding after them; SDPA keeps its fastest "
                                    f"kernel{extra}")
    return False, True, Choice("padded to the longest with an attention mask", f"the probe says: {detail}")
