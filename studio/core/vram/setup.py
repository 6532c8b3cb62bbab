"""Turn a RunConfig (plus a recipe and the machine) into the flat, resolved numbers the memory formulas read.

The method's part comes from the method itself (``MethodBase.vram_terms``: its estimator family,
trainable tensors, targets, rank, quantization ...); this module adds the training settings and the
engine's decisions. A ``Recipe`` says how the training code behaves where that moves memory: the
studio's own engine, or the plain transformers + PEFT recipe that tutorials teach (standard loss,
optional ``prepare_model_for_kbit_training``). A ``Machine`` states what the worker's machine
contributes (its allocator, liger-kernel): nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from studio.core.config import RunConfig, TrainingSpec
from studio.core.engine_rules import compile_expected, memory_saver, offload_expected
from studio.core.methods.base import VramTerms
from studio.core.models import ModelFacts
from studio.core.vram.machine import REFERENCE_MACHINE, Machine

NO_SDPA = {"gemma2"}  # transformers 5.x: Gemma2ForCausalLM._supports_sdpa is False


@dataclass(frozen=True)
class Recipe:
    """How the training code handles memory-relevant details the RunConfig does not state."""

    name: str = "studio"
    title: str = "the studio's engine"
    kbit_prep: bool = False  # peft.prepare_model_for_kbit_training: non-quantized params -> fp32
    force_loss: Optional[str] = None  # "standard" for the plain HF recipe
    autocast: bool = False  # always: adapter inputs saved in the compute dtype instead of the adapter dtype
    adapter_bytes: int = 4  # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype=True)
    # training.adapter_compute 'auto' on a bf16/fp16 run: fp32 adapter weights, forward under
    # torch.autocast with PEFT's input cast off (studio/worker/precision.py). The plain recipe
    # keeps PEFT's fp32 adapter compute whatever the config says.
    follows_adapter_compute: bool = True
    fused_optimizer: bool = True
    # transformers' own loss keeps the model-dtype logits alive in the output until backward ends;
    # the studio's standard loss (studio/worker/loss.py) lets them go once the fp32 copy exists.
    loss_keeps_logits: bool = False
    # Padded micro-batches: the studio pads on the right and passes no attention mask (causal
    # attention never looks at the padding), so SDPA keeps k/v at their own head count; the plain
    # recipe passes the mask, and SDPA then repeats k/v to every query head.
    mask_when_padded: bool = False
    # Fused RMSNorm/RoPE/SwiGLU kernels (Liger): None = used when the machine has liger-kernel
    # (Machine.fused_kernels), as the studio's worker does on CUDA.
    fused_kernels: Optional[bool] = None
    # PyTorch's caching allocator with expandable segments (the worker sets
    # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on Linux unless the user configured it):
    # freed space is reused by requests of any size, so reserved memory stays near allocated.
    # None = what the worker does on the machine (Machine.expandable_segments).
    expandable_segments: Optional[bool] = None
    # The studio's worker compiles the decoder layers of long CUDA runs (training.compile); the
    # plain recipe never does.
    compiles: bool = True
    # The studio's worker offloads the checkpointed layer inputs to CPU memory
    # (training.offload_checkpoints); the plain recipe never does.
    offloads: bool = True


STUDIO = Recipe()


def hf_peft_recipe(kbit_prep: bool = True) -> Recipe:
    """Plain transformers + PEFT: standard loss; QLoRA through prepare_model_for_kbit_training."""
    return Recipe(name="hf_peft" + ("" if kbit_prep else "_noprep"),
                  title="transformers + PEFT" + (" (kbit prep)" if kbit_prep else ""),
                  kbit_prep=kbit_prep, force_loss="standard", loss_keeps_logits=True, mask_when_padded=True,
                  fused_kernels=False, follows_adapter_compute=False, expandable_segments=False,
                  compiles=False, offloads=False)


@dataclass(frozen=True)
class Setup:
    """Everything the formulas need, resolved: no 'auto' left."""

    method: str  # the method's name, for messages
    terms: VramTerms  # the method's part: family, trainable tensors, targets, rank, quantization ...
    batch: int
    seq: int  # padded sequence length, virtual tokens included
    grad_accum: int
    gc: bool
    loss: str  # standard | chunked
    p: int  # bytes of the compute dtype
    precision: str  # bf16 | fp16 | fp32
    attention: str  # sdpa | eager | flash_attention_2
    packing: bool
    optimizer: str
    recipe: Recipe = field(default_factory=Recipe)
    fused_kernels: bool = False
    # torch.compile'd decoder layers: inductor's partitioner saves the matmul outputs and recomputes
    # the pointwise work (RMSNorm's output, SwiGLU's silu) in backward, as Liger's kernels do.
    compiled: bool = False
    autocast: bool = False  # adapters compute in the model's dtype (their inputs are not copied to fp32)
    # The checkpointed layer inputs wait in pinned CPU memory (the worker's save_on_cpu); only the
    # one being recomputed is on the GPU.
    offload: bool = False
    expandable: bool = False  # the CUDA allocator grows segments in place (little fragmentation)
    notes: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    @property
    def family(self) -> str:
        return self.terms.family


def resolve_setup(config: RunConfig, facts: ModelFacts, *, recipe: Recipe = STUDIO, gc: Optional[bool] = None,
                  bf16_supported: bool = True, machine: Machine = REFERENCE_MACHINE) -> Setup:
    """Resolve a RunConfig into a Setup. ``gc`` decides 'auto' checkpointing (None = off, or on with
    the memory-saver preset)."""
    t = config.training
    terms = config.method.vram_terms(facts)
    notes: list[str] = []
    precision = t.precision
    if precision == "auto":
        precision = "bf16" if bf16_supported else "fp16"
    if t.gradient_checkpointing == "auto":
        use_gc = bool(gc) if gc is not None else memory_saver(config)
    else:
        use_gc = t.gradient_checkpointing == "on"
    attention = _attention(config.model.attn_implementation, facts, notes)
    notes += terms.notes
    loss = _loss(recipe.force_loss or ("chunked" if t.loss_impl == "auto" else t.loss_impl), terms, facts, notes)
    # A compiled run gets its fusion from inductor and no Liger kernels; its layers keep what Liger's
    # would (H100: Llama-3.2-1B and 3.1-8B LoRA without checkpointing measured 2.8% under that
    # estimate; benchmarks/results/vram-grid30-v3 has compiled rows across the families).
    compiled = recipe.compiles and compile_expected(t) and t.device != "cpu"
    kernels = recipe.fused_kernels if recipe.fused_kernels is not None else (machine.fused_kernels and not compiled)
    expandable = (recipe.expandable_segments if recipe.expandable_segments is not None
                  else machine.expandable_segments)
    return Setup(method=config.method.name, terms=terms, batch=int(t.batch_size),
                 seq=int(t.max_seq_len) + terms.extra_positions, grad_accum=int(t.grad_accum), gc=use_gc, loss=loss,
                 p=4 if precision == "fp32" else 2, precision=precision, attention=attention,
                 packing=bool(config.data.packing), optimizer=str(t.optimizer), recipe=recipe,
                 fused_kernels=bool(kernels), compiled=compiled, autocast=_autocast(recipe, t, precision, terms),
                 offload=recipe.offloads and use_gc and offload_expected(config, facts), expandable=bool(expandable),
                 notes=tuple(notes))


def _attention(setting: str, facts: ModelFacts, notes: list[str]) -> str:
    attention = "sdpa" if setting == "auto" else setting
    if attention == "sdpa" and facts.model_type in NO_SDPA:
        attention = "eager"  # the worker falls back to eager when transformers has no SDPA path
        notes.append("this architecture has no SDPA attention in transformers: eager attention (memory grows "
                     "with length squared)")
    return attention


def _loss(loss: str, terms: VramTerms, facts: ModelFacts, notes: list[str]) -> str:
    """The worker's loss: chunked where it can reproduce the model's loss."""
    if loss == "chunked" and terms.family == "prompt":
        notes.append("prompt-learning methods use the standard loss (virtual tokens are added inside PEFT)")
        return "standard"
    if loss == "chunked" and facts.final_logit_softcapping:
        notes.append("this model soft-caps its logits, so the engine uses the standard loss")
        return "standard"
    return loss


def _autocast(recipe: Recipe, training: TrainingSpec, precision: str, terms: VramTerms) -> bool:
    # The worker autocasts only PEFT adapters with fp32 weights over a bf16/fp16 model; full-like
    # methods train the model's own weights in its dtype and never autocast.
    return recipe.autocast or (recipe.follows_adapter_compute and training.adapter_compute == "auto"
                               and precision in ("bf16", "fp16") and not terms.full_parameter)
