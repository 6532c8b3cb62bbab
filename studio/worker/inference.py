"""Load a run's trained result (or a plain model) for generation, with its base one switch away.

Chat and evaluation both ask the tuned model and its base the same question, so one base is loaded
and the training is switched on and off, never a second copy:

- PEFT methods (LoRA, QLoRA, DoRA, IA3, soft prompts ...): the trained weights are a named PEFT
  adapter; the base side runs inside ``disable_adapter()``. More adapters (other checkpoints, an
  exported adapter) load next to the first and ``set_adapter`` switches between them without
  reloading the base (the D-LoRA "dynamic" mode).
- Full-parameter methods (full, freeze, LISA, GaLore) have no adapter to switch off: the trained
  tensors are loaded over the base and the base's own values of exactly those tensors are kept in
  CPU memory; a switch swaps the two sets (for freeze-tuning a few layers, for full tuning the
  whole model: a copy of it in RAM and a transfer per switch, which ``switched`` reports in ms).
- A plain model has only the base side until an adapter is loaded over it.

QLoRA/QDoRA (and QR-Adaptor's 4-bit layers) load their base 4-bit on a CUDA GPU, as they trained;
bitsandbytes' 4-bit layers need one, so on the CPU the base loads unquantized and ``notes`` says so.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from studio.core.config import RunConfig
from studio.core.runs import Run
from studio.worker.errors import ModelLoadError, WorkerError


class BaseModelMissing(ModelLoadError):
    """The run's base model is not where the run says; ``path`` is where it was looked for."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


@dataclass
class Target:
    """What to load: a run's config (its base), the trained weights to put on it, and their name."""

    cfg: RunConfig
    run: Optional[Run] = None
    trained: Optional[Path] = None
    label: str = ""  # "final", "step-300", a folder's name; "" for a plain model
    checkpoint: Optional[int] = None


def resolve_target(run_dir: Optional[str | Path] = None, checkpoint: Optional[int] = None,
                   source: Optional[str | Path] = None, model: Optional[str] = None,
                   base_path: Optional[str | Path] = None) -> Target:
    """The run (its final adapter, checkpoint N, or the weights in ``source``) or the plain ``model``."""
    from studio.core.chat import with_base_path
    from studio.core.checkpoints import list_checkpoints

    if model:
        from studio.core.config import ModelSpec

        folder = Path(model).expanduser()
        spec = (ModelSpec(source="local", path=str(folder.resolve())) if folder.is_dir()
                else ModelSpec(source="hub", path=str(model)))
        cfg = RunConfig(name="chat", model=spec)
        if base_path:
            cfg = with_base_path(cfg, base_path)
        return Target(cfg)
    if run_dir is None:
        raise WorkerError("Give a run folder or a model (--model PATH).", kind="config")
    run = Run(Path(run_dir).resolve())
    if not run.config_path.is_file():
        raise WorkerError(f"{run.path} is not a run folder (no config.yaml).", kind="config")
    cfg = run.config()
    if base_path:
        cfg = with_base_path(cfg, base_path)
    if source:
        folder = Path(source).expanduser().resolve()
        return Target(cfg, run, _has_weights(folder, "these trained weights"), folder.name)
    checkpoints = list_checkpoints(run.path)
    if checkpoint is not None:
        found = [c for c in checkpoints if c.step == checkpoint]
        if not found:
            have = ", ".join(str(c.step) for c in checkpoints) or "none"
            raise WorkerError(f"This run has no complete checkpoint at step {checkpoint} (it has: {have}).",
                              kind="config")
        return Target(cfg, run, found[0].path, f"step-{checkpoint}", checkpoint)
    if run.adapter_dir.is_dir() and any(run.adapter_dir.iterdir()):
        return Target(cfg, run, run.adapter_dir, "final")
    if checkpoints:  # still training, or killed before its end: the newest checkpoint is the result so far
        return Target(cfg, run, checkpoints[-1].path, f"step-{checkpoints[-1].step}", checkpoints[-1].step)
    raise WorkerError(f"{run.path} has no trained weights yet (no adapter/, no checkpoint): train the run first.",
                      kind="config")


def _has_weights(folder: Path, what: str) -> Path:
    if not folder.is_dir() or not any(folder.glob("*.safetensors")):
        raise WorkerError(f"No trained weights in {folder}: {what} must be a folder with .safetensors files "
                          "(the run's adapter/, a checkpoint, an exported adapter).", kind="config")
    return folder


@dataclass
class Loaded:
    """A model loaded for generation; ``side("base"|"tuned")`` gives it with the training off or on."""

    model: Any
    tokenizer: Any
    device: str
    precision: str
    location: str
    mode: str  # "adapter" (PEFT), "swap" (full-parameter weights), "plain" (no trained weights)
    runtime: Any = None
    quantized: str = ""
    notes: list[str] = field(default_factory=list)
    adapters: dict[str, Path] = field(default_factory=dict)  # name -> folder, in load order
    active: Optional[str] = None
    _peft_names: dict[str, str] = field(default_factory=dict)  # our name -> PEFT's adapter name
    _swapped: dict[str, Any] = field(default_factory=dict)  # swap mode: the values NOT in the model now
    _on: str = "tuned"  # swap mode: which side's values the model holds

    # ---- sides ------------------------------------------------------------------------------
    def side_status(self) -> dict[str, dict[str, Any]]:
        """{side: {available, note}} for the ready event."""
        if self.mode == "plain":
            return {"base": {"available": True, "note": "the model as it is"},
                    "tuned": {"available": False, "note": "a plain model has no trained weights; load an adapter "
                                                          "over it to compare"}}
        how = ("the same model with the adapter switched off" if self.mode == "adapter" else
               f"the base values of the {len(self._swapped)} trained tensors swapped in from CPU memory")
        return {"base": {"available": True, "note": how},
                "tuned": {"available": True, "note": f"the trained weights {self.active!r} on the base"}}

    @contextlib.contextmanager
    def side(self, side: str) -> Iterator[Any]:
        """The model to call ``generate`` / forward on for ``side``."""
        if side == "tuned" and self.mode == "plain":
            raise WorkerError("This model has no trained weights to compare; load an adapter first.", kind="config")
        if self.mode == "swap":
            self._swap_to(side)
            yield self.model
        elif self.mode == "adapter" and side == "base":
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.model

    def logits_offset(self, side: str) -> int:
        """Virtual-token positions the tuned side of a soft-prompt method prepends to the logits."""
        if side == "base" or self.runtime is None or self.mode != "adapter":
            return 0
        return self.runtime.logits_offset()

    # ---- several trained weights over one base (dynamic mode) --------------------------------
    def load_adapter(self, name: str, folder: Path) -> tuple[float, float]:
        """Load trained weights under ``name`` and make them the tuned side: (load ms, switch ms)."""
        folder = _has_weights(Path(folder).expanduser().resolve(), "the adapter")
        start = time.perf_counter()
        if self.mode == "swap":
            self._replace_trained(folder)
            self.adapters = {name: folder}
        else:
            self._load_peft(name, folder)
            self.adapters[name] = folder
        loaded_ms = 1000 * (time.perf_counter() - start)
        return loaded_ms, self.set_adapter(name)

    def set_adapter(self, name: str) -> float:
        """Make a loaded adapter the tuned side; the switch's wall time in ms."""
        if name not in self.adapters:
            known = ", ".join(self.adapters) or "none"
            raise WorkerError(f"No adapter named {name!r} is loaded (loaded: {known}); load it first.", kind="config")
        start = time.perf_counter()
        if self.mode == "adapter":
            self.model.set_adapter(self._peft_names[name])
        self.active = name
        _sync(self.device)
        return 1000 * (time.perf_counter() - start)

    def _load_peft(self, name: str, folder: Path) -> None:
        if self.mode == "plain":
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name="a0", is_trainable=False)
            self.mode = "adapter"
            self._peft_names[name] = "a0"
        else:
            peft_name = f"a{len(self._peft_names)}"
            try:
                self.model.load_adapter(str(folder), adapter_name=peft_name, is_trainable=False)
            except (ValueError, TypeError, KeyError) as e:
                raise WorkerError(f"{folder} cannot be loaded next to the current adapter: {e}", kind="config") from e
            self._peft_names[name] = peft_name
        self._compute_dtype(self._peft_names[name])
        self.model.eval()

    def _compute_dtype(self, peft_name: str) -> None:
        """Adapter weights in the base's half precision on a GPU, as training computed them (bf16 autocast over
        fp32 master weights); PEFT would keep them fp32 and cast every adapter input up to fp32."""
        import torch

        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        if dtype is None or self.device != "cuda":
            return
        for name, p in self.model.named_parameters():
            if (f".{peft_name}." in name or name.endswith(f".{peft_name}")) and p.dtype == torch.float32:
                p.data = p.data.to(dtype)

    # ---- swap mode --------------------------------------------------------------------------
    def _swap_to(self, side: str) -> None:
        if side == self._on:
            return
        import torch

        params = _tensors_by_name(self.model)
        with torch.no_grad():
            for name, other in self._swapped.items():
                target = params[name]
                current = target.detach().to("cpu", copy=True)
                target.copy_(other.to(device=target.device, dtype=target.dtype))
                self._swapped[name] = current
        self._on = side
        _sync(self.device)

    def _replace_trained(self, folder: Path) -> None:
        """Other full-parameter weights in place of the current ones; the base values stay kept."""
        self._swap_to("tuned")
        names = _safetensors_names(folder)
        params = _tensors_by_name(self.model)
        for name in names - set(self._swapped):  # first time these are trained: keep the base's value
            if name in params:
                self._swapped[name] = params[name].detach().to("cpu", copy=True)
        from studio.worker.methods.weights import load_tensors_into

        load_tensors_into(self.model, folder)


def check_base_model(cfg: RunConfig) -> None:
    """BaseModelMissing (with the path looked in) when a run's local base model folder is gone or wrong."""
    from studio.core.chat import base_model_problem

    where, problem = base_model_problem(cfg)
    if problem:
        raise BaseModelMissing(problem, where)


def load_for_inference(target: Target, log: Callable[[str], None] = print) -> Loaded:
    """The base (4-bit where the method trained it so and a GPU is here) with the trained weights on it."""
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, load_tokenizer, model_location, resolve_placement

    cfg = target.cfg
    check_base_model(cfg)
    placement = resolve_placement(cfg)
    tokenizer = load_tokenizer(cfg)
    runtime = runtime_for(cfg) if target.trained is not None else None
    notes: list[str] = []
    quant, quantized = None, ""
    if runtime is not None:
        _restore_plan(runtime, target.trained)
        wanted = runtime.quantization_config(placement.dtype) if placement.device == "cuda" else None
        if wanted is not None:
            quant = wanted
            quantized = _describe_quant(wanted)
        elif placement.device != "cuda" and _quantizes(cfg):
            notes.append("This run trained on a 4-bit base; 4-bit layers need a CUDA GPU, so on the CPU the base "
                         "is loaded unquantized (answers can differ slightly from the GPU's).")
    log(f"loading the base model {model_location(cfg)} on {placement.device} ({placement.precision}"
        f"{', ' + quantized if quantized else ''})")
    model, _ = load_model(cfg, placement, quant, log=log)
    loaded = Loaded(model=model, tokenizer=tokenizer, device=placement.device, precision=placement.precision,
                    location=model_location(cfg), mode="plain", runtime=runtime, quantized=quantized, notes=notes)
    if target.trained is not None:
        if runtime.trains_base_weights:
            loaded.mode = "swap"
            loaded._replace_trained(target.trained)
            loaded.adapters = {target.label: target.trained}
            loaded.active = target.label
        else:
            loaded.model = runtime.load_trained(model, target.trained)  # PEFT's adapter name: "default"
            loaded.mode = "adapter"
            loaded._peft_names[target.label] = "default"
            loaded._compute_dtype("default")
            loaded.adapters[target.label] = target.trained
            loaded.active = target.label
    loaded.model.eval()
    inner = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
    inner.config.use_cache = True  # training turned the KV cache off
    return loaded


def _restore_plan(runtime: Any, trained: Path) -> None:
    """QR-Adaptor's per-layer plan is saved with its weights; reuse it instead of re-measuring the base."""
    plan_file = Path(trained) / "qr_adaptor_plan.json"
    if hasattr(runtime, "plan") and plan_file.is_file():
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        plan["ranks"] = {int(k): int(v) for k, v in plan.get("ranks", {}).items()}
        runtime.plan = plan


def _quantizes(cfg: RunConfig) -> bool:
    quantized = getattr(cfg.method, "quantized_base", None)
    return bool(quantized()) if callable(quantized) else cfg.method.name == "qr_adaptor"


def _describe_quant(config: Any) -> str:
    if getattr(config, "load_in_4bit", False):
        return f"4-bit {getattr(config, 'bnb_4bit_quant_type', 'nf4')}"
    return "8-bit" if getattr(config, "load_in_8bit", False) else ""


def _tensors_by_name(model: Any) -> dict[str, Any]:
    tensors = dict(model.named_parameters())
    tensors.update(dict(model.named_buffers()))
    return tensors


def _safetensors_names(folder: Path) -> set[str]:
    from safetensors import safe_open

    names: set[str] = set()
    for f in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            names.update(fh.keys())
    return names


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
