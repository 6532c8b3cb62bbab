"""Turn a RunConfig (plus a recipe) into the flat, resolved numbers the memory formulas read.

Method configs are read by ``name`` with ``getattr`` and defaults, so methods the registry does
not know yet (or that gained fields later) still resolve. A ``Recipe`` says how the training
code behaves where that moves memory: the studio's own engine, or the plain transformers + PEFT
recipe that tutorials teach (standard loss, optional ``prepare_model_for_kbit_training``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional

from studio.core.engine_rules import (CHUNK_BYTES, OFFLOAD_COST_SCALE, OFFLOAD_MAX_COST,  # noqa: F401 - re-exported
                                      compile_expected, expandable_segments, memory_saver, offload_cost,
                                      offload_expected)
from studio.core.models import LinearShape, ModelFacts

# Method names -> family the formulas know. Unknown names are treated as LoRA-like adapters.
LORA_LIKE = {"lora", "qlora", "dora", "qdora", "adalora", "pissa", "olora", "rslora", "lora_plus",
             "loraplus", "loha", "lokr", "vera", "vb_lora", "vblora", "qr_adaptor"}
PROMPT_LIKE = {"prompt_tuning", "p_tuning", "prefix_tuning", "llama_adapter", "adaption_prompt"}
QUANTIZED_BY_NAME = {"qlora", "qdora", "qr_adaptor"}
NO_SDPA = {"gemma2"}  # transformers 5.x: Gemma2ForCausalLM._supports_sdpa is False

ADAPTER_FAMILIES = {"lora", "ia3", "waveft", "prompt"}  # PEFT adapters: fp32 weights on a frozen base


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
    # Fused RMSNorm/RoPE/SwiGLU kernels (Liger): None = used when liger-kernel is installed here,
    # as the studio's worker does on CUDA.
    fused_kernels: Optional[bool] = None
    # PyTorch's caching allocator with expandable segments (the worker sets
    # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True on Linux unless the user configured it):
    # freed space is reused by requests of any size, so reserved memory stays near allocated.
    # None = what the worker does on this machine.
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

    method: str
    family: str  # lora | ia3 | prompt | full | galore | lisa | freeze | waveft
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
    quant_bits: int = 0  # 0 = not quantized, 4 or 8
    double_quant: bool = True
    compute_bytes: int = 2  # QLoRA compute dtype bytes
    rank: int = 16
    dropout: float = 0.0
    targets: tuple[LinearShape, ...] = ()
    dora: bool = False
    adalora: bool = False
    ia3_ff: tuple[str, ...] = ()
    virtual_tokens: int = 0
    prompt_kind: str = ""
    trainable_layers: int = 0  # LISA / freeze: how many decoder layers train at once
    train_embeddings: bool = False  # freeze-tuning extras
    train_head: bool = False
    encoder_hidden: int = 0  # p-tuning / prefix projection MLP width
    bf16_layers: int = 0  # QR-Adaptor: layers kept unquantized
    galore_rank: int = 128
    galore_layerwise: bool = False
    galore_8bit: bool = False
    vb_vectors: int = 0
    vb_vector_length: int = 0
    waveft_coeffs: int = 0
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


def _targets(spec: Any, facts: ModelFacts, default: str = "all-linear") -> tuple[tuple[LinearShape, ...], list[str]]:
    notes: list[str] = []
    if spec is None or spec == "auto":
        spec = default
    if isinstance(spec, str):
        if spec in ("all-linear", "all_linear", "all"):
            return tuple(facts.linear_shapes), notes
        spec = [spec]
    names = [str(s) for s in spec]
    chosen = tuple(s for s in facts.linear_shapes
                   if any(s.name == n or s.name.endswith("." + n) or n.endswith("." + s.name) for n in names))
    missing = [n for n in names if not any(s.name == n or s.name.endswith("." + n) or n.endswith("." + s.name)
                                           for s in facts.linear_shapes)]
    if missing:
        notes.append(f"target modules not in this model: {', '.join(missing)} "
                     f"(it has {', '.join(facts.linear_modules)})")
    return chosen, notes


def resolve_setup(config: Any, facts: ModelFacts, *, recipe: Recipe = STUDIO, gc: Optional[bool] = None,
                  bf16_supported: bool = True) -> Setup:
    """Resolve a RunConfig into a Setup. ``gc`` decides 'auto' checkpointing (None = off, or on with
    the memory-saver preset)."""
    m = config.method
    t = config.training
    name = str(getattr(m, "name", "lora"))
    notes: list[str] = []

    precision = t.precision
    if precision == "auto":
        precision = "bf16" if bf16_supported else "fp16"
    p = 4 if precision == "fp32" else 2

    loss = recipe.force_loss or ("chunked" if t.loss_impl == "auto" else t.loss_impl)
    if t.gradient_checkpointing == "auto":
        use_gc = bool(gc) if gc is not None else memory_saver(config)
    else:
        use_gc = t.gradient_checkpointing == "on"

    attention = getattr(config.model, "attn_implementation", "auto")
    if attention == "auto":
        attention = "sdpa"
    if attention == "sdpa" and facts.model_type in NO_SDPA:
        attention = "eager"  # the worker falls back to eager when transformers has no SDPA path
        notes.append("this architecture has no SDPA attention in transformers: eager attention (memory grows "
                     "with length squared)")

    family = "lora"
    quant_bits = 0
    kw: dict[str, Any] = {}
    if name in LORA_LIKE or name not in PROMPT_LIKE | {"ia3", "full", "freeze", "galore", "lisa", "waveft"}:
        if name not in LORA_LIKE:
            notes.append(f"method {name!r} is estimated as a LoRA-style adapter")
        family = "lora"
        targets, tnotes = _targets(getattr(m, "target_modules", "all-linear"), facts)
        notes += tnotes
        rank = int(getattr(m, "r", None) or getattr(m, "rank", None) or 16)
        if name == "adalora":
            rank = int(getattr(m, "init_r", None) or 12)
        kw.update(targets=targets, rank=rank, dropout=float(getattr(m, "dropout", 0.0) or 0.0),
                  dora=name in ("dora", "qdora") or bool(getattr(m, "use_dora", False)),
                  adalora=name == "adalora")
        if name in ("vb_lora", "vblora"):
            kw.update(vb_vectors=int(getattr(m, "num_vectors", 256)),
                      vb_vector_length=int(getattr(m, "vector_length", 256)))
        bits = getattr(m, "bits", None)
        if name in QUANTIZED_BY_NAME or getattr(m, "quantize", False) or getattr(m, "load_in_4bit", False):
            quant_bits = int(bits or 4)
        if name == "qr_adaptor":
            kw.update(bf16_layers=_qr_bf16_layers(m, facts.num_layers))
    elif name == "ia3":
        family = "ia3"
        default_targets = list(IA3_PEFT_DEFAULTS.get(facts.model_type, ())) or _ia3_auto_targets(facts.linear_modules)
        spec = getattr(m, "target_modules", None)
        targets, tnotes = _targets(default_targets if spec in (None, "auto") else spec, facts)
        notes += tnotes
        ff = getattr(m, "feedforward_modules", None)
        ff_names = tuple(ff) if isinstance(ff, (list, tuple)) else (
            tuple(s.name for s in targets if s.name in ("down_proj", "mlp.c_proj", "w2", "fc2", "dense_4h_to_h")) if ff is None else (ff,))
        kw.update(targets=targets, ia3_ff=ff_names)
    elif name in PROMPT_LIKE:
        family = "prompt"
        n_virtual = int(getattr(m, "num_virtual_tokens", None) or getattr(m, "adapter_len", None) or
                        (10 if name in ("llama_adapter", "adaption_prompt") else 20))
        kw.update(virtual_tokens=n_virtual, prompt_kind=name)
        if name == "p_tuning" or (name == "prefix_tuning" and getattr(m, "prefix_projection", False)):
            kw.update(encoder_hidden=int(getattr(m, "encoder_hidden_size", None) or 256))
        if name in ("llama_adapter", "adaption_prompt"):
            kw.update(trainable_layers=min(facts.num_layers, int(getattr(m, "adapter_layers", None) or 8)))
    elif name == "waveft":
        family = "waveft"
        targets, tnotes = _targets(getattr(m, "target_modules", "all-linear"), facts)
        notes += tnotes
        kw.update(targets=targets, waveft_coeffs=int(getattr(m, "n_frequency", None) or 2592))
    elif name == "galore":
        family = "galore"
        optim_name = str(getattr(m, "optim", "") or "")
        kw.update(galore_rank=int(getattr(m, "rank", None) or getattr(m, "r", None) or 128),
                  galore_layerwise=bool(getattr(m, "layerwise", False)) or "layerwise" in optim_name,
                  galore_8bit=bool(getattr(m, "eight_bit", False)) or "8bit" in optim_name)
    elif name == "lisa":
        family = "lisa"
        kw.update(trainable_layers=int(getattr(m, "n_layers", None) or getattr(m, "active_layers", None) or 2))
    elif name == "freeze":
        family = "freeze"
        kw.update(trainable_layers=int(getattr(m, "trainable_layers", None) or getattr(m, "num_layers", None) or 2),
                  train_embeddings=bool(getattr(m, "train_embeddings", False)),
                  train_head=bool(getattr(m, "train_head", False)))
    else:  # full
        family = "full"

    if quant_bits:
        cd = str(getattr(m, "compute_dtype", "bf16"))
        kw.update(quant_bits=quant_bits, double_quant=bool(getattr(m, "double_quant", True)),
                  compute_bytes=4 if cd == "fp32" else 2)

    if loss == "chunked" and family == "prompt":
        loss = "standard"
        notes.append("prompt-learning methods use the standard loss (virtual tokens are added inside PEFT)")
    elif loss == "chunked" and facts.final_logit_softcapping:
        loss = "standard"
        notes.append("this model soft-caps its logits, so the engine uses the standard loss")

    # A compiled run gets its fusion from inductor and no Liger kernels; its layers keep what Liger's
    # would (H100: Llama-3.2-1B and 3.1-8B LoRA without checkpointing measured 2.8% under that
    # estimate; benchmarks/results/vram-grid30-v3 has compiled rows across the families).
    compiled = recipe.compiles and compile_expected(t) and str(getattr(t, "device", "auto")) != "cpu"
    kernels = recipe.fused_kernels if recipe.fused_kernels is not None else (liger_installed() and not compiled)
    kw["fused_kernels"] = bool(kernels)
    kw["compiled"] = compiled
    kw["offload"] = recipe.offloads and use_gc and offload_expected(config, facts)
    kw["expandable"] = recipe.expandable_segments if recipe.expandable_segments is not None \
        else worker_uses_expandable_segments()
    # The worker autocasts only PEFT adapters with fp32 weights over a bf16/fp16 model; full-like
    # methods train the model's own weights in its dtype and never autocast.
    kw["autocast"] = recipe.autocast or (
        recipe.follows_adapter_compute and getattr(t, "adapter_compute", "fp32") == "auto"
        and precision in ("bf16", "fp16") and family in ADAPTER_FAMILIES)

    seq = int(t.max_seq_len) + (kw.get("virtual_tokens", 0) if kw.get("prompt_kind") in ("prompt_tuning", "p_tuning") else 0)
    packing = bool(getattr(config.data, "packing", False))
    return Setup(method=name, family=family, batch=int(t.batch_size), seq=seq, grad_accum=int(t.grad_accum),
                 gc=use_gc, loss=loss, p=p, precision=precision, attention=attention, packing=packing,
                 optimizer=str(t.optimizer), recipe=recipe, notes=tuple(notes), **kw)


# IA3 'auto' is PEFT's per-architecture default (peft.utils.constants, 0.21: Qwen and Gemma scale
# q and v, Llama and Mistral k and v); for an architecture PEFT does not list (Phi-3's fused
# qkv_proj, ...) the worker (studio/worker/methods/ia3.py) takes the attention projection and the
# feed-forward output from the model's own layer names. Same here.
IA3_PEFT_DEFAULTS: dict[str, tuple[str, ...]] = {
    **{t: ("k_proj", "v_proj", "down_proj") for t in ("llama", "mistral")},
    **{t: ("q_proj", "v_proj", "down_proj") for t in ("llama4", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3")},
    "mixtral": ("k_proj", "v_proj", "w2"),
    "phi": ("q_proj", "v_proj", "fc2"),
}
_IA3_ATTENTION = (("k_proj", "v_proj"), ("qkv_proj",), ("query_key_value",), ("c_attn",), ("Wqkv",))
_IA3_FEEDFORWARD = ("down_proj", "fc2", "dense_4h_to_h", "w2", "c_proj")


def _ia3_auto_targets(names: tuple[str, ...]) -> Any:
    short = {n.rsplit(".", 1)[-1]: n for n in names}
    attention = next((list(g) for g in _IA3_ATTENTION if set(g) <= set(short)), [])
    ff = next(([n] for n in _IA3_FEEDFORWARD if n in short), [])
    return [short[n] for n in attention + ff] or "all-linear"


def _qr_bf16_layers(m: Any, layers: int) -> int:
    """How many decoder layers QR-Adaptor keeps in bf16 ('0, 1, 23' or '0-2' in table mode)."""
    if getattr(m, "allocation", "sensitivity") != "table":
        return min(layers, int(getattr(m, "bf16_layer_count", 0) or 0))
    chosen: set[int] = set()
    for part in str(getattr(m, "bf16_layers", "") or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            chosen.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return len([i for i in chosen if 0 <= i < layers])


def worker_uses_expandable_segments() -> bool:
    """What the worker's allocator set-up does in this environment (studio.core.engine_rules)."""
    import os

    return expandable_segments(os.environ)


@lru_cache(maxsize=1)
def liger_installed() -> bool:
    """Whether liger-kernel is importable here (the worker then patches RMSNorm, RoPE, SwiGLU)."""
    try:
        return importlib.util.find_spec("liger_kernel") is not None
    except (ImportError, ValueError):
        return False
