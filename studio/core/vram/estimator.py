"""The phasic peak-memory model: persistent state plus the worst instant of a training step.

Formulas follow shared/research/vram-estimation.md section 4 (the Hugging Face / PEFT /
bitsandbytes stack): weights by dtype and quantization, trainable parameters per method, their
gradients and optimizer states, the activations autograd actually saves (frozen linears save
nothing; with PEFT's fp32 compute every adapter keeps its own fp32 copy of its input, under the
engine's autocast adapters share the layer's bf16 tensors; RMSNorm keeps an fp32 copy, padded
SDPA repeats k/v), the logits/loss spike (14 bytes per logit element with the standard loss), and
transients (QLoRA dequantization, DoRA's dense update, the adapters' own working set, optimizer
temporaries). The peak is the largest of four instants: the loss, the start and end of the
backward pass, and the optimizer step; reserved memory adds the caching allocator's slack (little
with expandable segments). Pure arithmetic on a Setup: a few microseconds per estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from studio.core.config import RunConfig
from studio.core.engine_rules import chunk_rows
from studio.core.models import LinearShape, ModelFacts
from studio.core.vram.machine import Overheads
from studio.core.vram.setup import Setup

MIB = 1024 ** 2
GIB = 1024 ** 3

NF4_DQ_BYTES = 0.515869  # 4-bit NF4 + blockwise absmax, double-quantized (4.127 bit)
NF4_BYTES = 0.5625  # without double quantization (4.5 bit)
INT8_BYTES = 1.0 + 4 / 4096  # LLM.int8 weights + fp32 row scales (rows ~ 4096 wide)
ADAM8_BYTES = 2 * (1 + 4 / 256)  # two uint8 states + fp32 absmax per 256-element block
BNB_MIN_8BIT_SIZE = 4096  # smaller tensors keep fp32 states in bitsandbytes
BNB_PAGED_MIN = 100_000  # paged (managed-memory) state only for tensors at least this large

# Caching-allocator slack beyond the peak allocation (fitted on benchmarks/results/vram-grid30*,
# re-scored with benchmarks/vram_rescore.py); see the reserved-memory section of the estimate.
# Default allocator only (expandable segments leave neither). Grid v2 puts the studio's standard
# loss at 0.4-0.55 fp32 logits tensors on most rows but 1.3-1.5 on three (one more re-carved
# logits segment, docs/vram-estimator.md): this is the low end.
STUDIO_LOGITS_SLACK = 0.5  # the studio's standard loss, in units of transformers' cached logits
# with checkpointing: share of the loss spike still reserved at the peak (0.8 before the chunked
# loss's spike counted its third slice; 0.75 on grid v2)
GC_SPIKE_SLACK = 0.75
# GaLore's step on the H100 allocates ~1 byte per decoder-matrix parameter more than the same code
# does on the CPU (benchmarks/vram_cpu_trace.py matches the CPU step exactly without it): 0.98 and
# 1.01 B/param on Qwen2.5-0.5B and Phi-3 (6 layers). Measured, cause not yet known (cuSOLVER's SVD
# workspace at a refresh is the GPU-only candidate); `vram_accuracy.py run --snapshot` names it.
GALORE_GPU_STEP_EXTRA = 1.0

COMPONENTS = ("weights", "trainable", "gradients", "optimizer", "activations", "logits", "transients", "overhead")
COMPONENT_TITLES = {
    "weights": "Model weights", "trainable": "Trainable parameters", "gradients": "Gradients",
    "optimizer": "Optimizer states", "activations": "Activations", "logits": "Logits and loss",
    "transients": "Transient buffers", "overhead": "CUDA and allocator",
}
PHASE_TITLES = {"loss": "loss (end of the forward pass)", "backward_start": "start of the backward pass",
                "backward_end": "end of the backward pass", "step": "optimizer step"}


@dataclass(frozen=True)
class Estimate:
    """Predicted peak memory of one training step, with what it is made of."""

    peak_allocated: int  # torch.cuda.max_memory_allocated
    peak_reserved: int  # torch.cuda.max_memory_reserved
    device_used: int  # what nvidia-smi shows: reserved + CUDA context + paged optimizer states
    breakdown: dict[str, int]  # COMPONENTS at the peak instant; sums to device_used
    peak_phase: str  # a key of PHASE_TITLES
    phases: dict[str, int]  # allocated bytes at each instant
    trainable_params: int
    total_params: int
    setup: Setup
    paged_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    saved_activations: int = 0  # what autograd holds at the end of the forward pass

    def fits(self, budget_bytes: Optional[int]) -> bool:
        return budget_bytes is None or self.device_used <= budget_bytes

    def headroom(self, budget_bytes: int) -> int:
        return budget_bytes - self.device_used

    @property
    def phase_title(self) -> str:
        return PHASE_TITLES[self.peak_phase]

    def to_dict(self) -> dict:
        return {
            "peak_allocated": self.peak_allocated, "peak_reserved": self.peak_reserved,
            "device_used": self.device_used, "breakdown": dict(self.breakdown), "peak_phase": self.peak_phase,
            "phases": dict(self.phases), "trainable_params": self.trainable_params,
            "total_params": self.total_params, "paged_bytes": self.paged_bytes, "notes": list(self.notes),
            "gradient_checkpointing": self.setup.gc, "offload_checkpoints": self.setup.offload,
            "loss_impl": self.setup.loss, "precision": self.setup.precision,
            "recipe": self.setup.recipe.name,
        }


def budget_for(total_bytes: int, used_by_others: int = 0) -> int:
    """Memory a run may use on a GPU: total minus what others use minus a safety margin."""
    margin = max(256 * MIB, int(0.02 * total_bytes))
    return max(0, total_bytes - used_by_others - margin)


def limited_budget(budget_bytes: Optional[int], config: RunConfig) -> Optional[int]:
    """The budget under the run's own memory limit (training.memory_limit_gb, decimal GB; 0 = none)."""
    limit_gb = config.training.memory_limit_gb or 0.0
    if limit_gb <= 0:
        return budget_bytes
    limit = int(limit_gb * 1e9)
    return limit if budget_bytes is None else min(budget_bytes, limit)


# ---- the estimate -------------------------------------------------------------------------------

def estimate_setup(s: Setup, f: ModelFacts, ov: Overheads = Overheads()) -> Estimate:
    """Peak memory of one training step of ``s`` on the model ``f``: the persistent state plus the
    largest of the four instants, then the allocator's slack and the CUDA context."""
    notes = list(s.notes)
    state = _persistent_state(s, f, notes)
    act = _activations(s, f, ov, state.trainable_params, notes)
    loss = _logits_and_loss(s, f, ov)
    parts = _instants(s, f, ov, state, act, loss, _transients(s, f, ov))
    phases = {k: state.persistent + sum(v.values()) for k, v in parts.items()}
    peak_phase = max(phases, key=lambda k: phases[k])
    peak_alloc = phases[peak_phase]
    at_peak = parts[peak_phase]
    slack = _reserved_slack(s, f, ov, peak_alloc, loss)
    reserved = peak_alloc + slack
    device = reserved + ov.cuda_context + state.paged
    breakdown = {
        "weights": int(state.weights), "trainable": int(state.trainable), "gradients": int(at_peak["gradients"]),
        "optimizer": int(state.optimizer + state.paged), "activations": int(at_peak["activations"]),
        "logits": int(at_peak["logits"]), "transients": int(at_peak["transients"]),
        "overhead": int(slack + ov.cuda_context),
    }
    return Estimate(peak_allocated=int(peak_alloc), peak_reserved=int(reserved), device_used=int(device),
                    breakdown=breakdown, peak_phase=peak_phase, phases={k: int(v) for k, v in phases.items()},
                    trainable_params=int(state.trainable_params), total_params=int(f.num_params), setup=s,
                    paged_bytes=int(state.paged), notes=tuple(notes), saved_activations=int(act.saved))


def _kbit_prep(s: Setup) -> bool:
    """peft.prepare_model_for_kbit_training on a quantized base: the non-quantized weights in fp32."""
    return bool(s.terms.quant_bits) and s.recipe.kbit_prep


# ---- weights, gradients and optimizer states ----------------------------------------------------

@dataclass(frozen=True)
class _State:
    """What lives through the whole step, and the gradients and optimizer temporaries it grows."""

    weights: float  # the frozen (or, full-parameter, untrained) weights
    trainable: int  # the trainable parameters
    optimizer: float  # optimizer states on the GPU
    paged: float  # paged optimizer states (managed memory, outside the allocator)
    grads: int  # every trainable parameter's gradient, after the backward pass
    head_grad: int  # the trained head's gradient, from the loss node on
    optimizer_temp: float  # the optimizer step's temporaries
    trainable_params: int

    @property
    def persistent(self) -> float:
        return self.weights + self.trainable + self.optimizer


def _persistent_state(s: Setup, f: ModelFacts, notes: list[str]) -> _State:
    tensors = [(n, c) for n, c in s.terms.tensors if n > 0 and c > 0]
    p_train = sum(n * c for n, c in tensors)
    weights, train_bytes, state_bytes = _weights(s, f, p_train, notes)
    optimizer, paged, optimizer_temp = _optimizer_states(s, f, tensors, p_train, state_bytes, notes)
    return _State(weights=weights, trainable=p_train * train_bytes, optimizer=optimizer, paged=paged,
                  grads=p_train * train_bytes,
                  head_grad=f.embedding_params * train_bytes if s.terms.head_trains else 0,
                  optimizer_temp=optimizer_temp, trainable_params=p_train)


def _weights(s: Setup, f: ModelFacts, p_train: int, notes: list[str]) -> tuple[float, int, int]:
    """(bytes of the weights that do not train, bytes per trainable parameter, bytes per optimizer
    state element)."""
    if s.terms.full_parameter:
        # The studio trains full parameters in the load dtype (pure bf16, no fp32 master copy); torch
        # AdamW keeps its moments in the parameter's dtype. fp16 cannot hold updates or be
        # loss-scaled in place, so fp16 runs load the model in fp32 (master weights) and compute
        # in fp16 under autocast (studio/worker/train.py).
        master_fp32 = s.precision == "fp16"
        train_bytes = 4 if master_fp32 else s.p
        if master_fp32:
            notes.append("fp16 training of the model's own weights keeps them in fp32 (compute in fp16)")
        return max(0, f.num_params - p_train) * train_bytes, train_bytes, train_bytes
    train_bytes = s.recipe.adapter_bytes
    if not s.terms.quant_bits:
        return f.num_params * s.p, train_bytes, 4
    m = s.terms
    per = (NF4_DQ_BYTES if m.double_quant else NF4_BYTES) if m.quant_bits == 4 else INT8_BYTES
    layer_lin = f.layer_linear_params
    lin_params = layer_lin * f.num_layers
    rest = max(0, f.num_params - lin_params)
    quant_lin = lin_params - m.bf16_layers * layer_lin  # QR-Adaptor keeps some layers in bf16
    kbit_prep = _kbit_prep(s)
    weights = int(quant_lin * per + (rest + m.bf16_layers * layer_lin) * (4 if kbit_prep else s.p))
    if kbit_prep:
        notes.append("prepare_model_for_kbit_training keeps embeddings, norms and the head in fp32")
    if f.expert_shapes:
        notes.append("bitsandbytes quantizes linear layers only: this model's fused experts stay in "
                     f"{s.precision}")
    return weights, train_bytes, 4


def _optimizer_states(s: Setup, f: ModelFacts, tensors: list[tuple[int, int]], p_train: int, state_bytes: int,
                      notes: list[str]) -> tuple[float, float, float]:
    """(states on the GPU, paged states, the step's temporaries)."""
    optimizer: float = 0
    paged: float = 0
    temp: float = 0
    if s.family == "galore":
        optimizer, temp = _galore_states(s, f, state_bytes)
    else:
        for numel, count in tensors:
            nbytes = _state_bytes(s.optimizer, numel, state_bytes)
            if s.optimizer == "paged_adamw_8bit" and numel >= BNB_PAGED_MIN:
                paged += nbytes * count
            else:
                optimizer += nbytes * count
        if s.terms.extra_state_bytes:
            optimizer += p_train * s.terms.extra_state_bytes
    if s.optimizer == "adamw" and not s.recipe.fused_optimizer:
        temp += optimizer // 2  # foreach AdamW's intermediate lists
    if s.optimizer == "paged_adamw_8bit" and paged:
        notes.append("paged optimizer states live in managed memory and can spill to the CPU (slow)")
    return optimizer, paged, temp


def _state_bytes(optimizer: str, numel: int, state_b: int) -> float:
    if optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        return (ADAM8_BYTES if numel >= BNB_MIN_8BIT_SIZE else 8) * numel
    if optimizer == "sgd":
        return state_b * numel  # momentum buffer
    return 2 * state_b * numel


def _galore_states(s: Setup, f: ModelFacts, state_b: int) -> tuple[int, int]:
    """GaLore (studio/worker/methods/galore.py): per decoder matrix an fp32 projector r x short
    side and fp32 moments 2 x r x long side; everything else (embeddings, head, norms) plain
    AdamW with fp32 moments. Returns (states, step transient): the SVD of the largest matrix at
    a refresh, or the fp32 gradient copy and update of the embedding, whichever is larger."""
    r = s.terms.galore_rank
    states = 0
    for m in f.linear_shapes:
        small, large = sorted((m.in_features, m.out_features))
        rr = min(r, small)
        states += (small * rr * 4 + 2 * rr * large * 4) * m.count * f.num_layers
    rest = f.params_from_config - f.layer_linear_params * f.num_layers  # experts included: plain AdamW
    states += rest * 8
    last = f.linear_shapes[-1].in_features * f.linear_shapes[-1].out_features if f.linear_shapes else 0
    # A refresh (step 1, then every update_interval steps): the fp32 gradient, the SVD's working
    # copy, U and V of the largest matrix. Any later step, for the embedding (plain AdamW on its
    # bf16 gradient): an fp32 copy of the gradient, sqrt(v) and sqrt(v) + eps alive together
    # (12 B per element), while the previous parameter's fp32 update (the last decoder matrix,
    # projected back) is still referenced by the loop (measured on the CPU with
    # benchmarks/vram_cpu_trace.py: these two account for the whole step).
    svd = max((12 * m.in_features * m.out_features + 4 * min(m.in_features, m.out_features) ** 2
               for m in f.linear_shapes), default=0)
    extra = GALORE_GPU_STEP_EXTRA * f.layer_linear_params * f.num_layers
    return int(states), int(max(svd, 12 * f.embedding_params + 4 * last) + extra)


# ---- activations --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _LayerTokens:
    """Bytes one decoder layer saves per token for the backward pass, by part."""

    norms: int
    attention: int
    mlp: int
    adapters: int  # what the adapters save beside the frozen layer
    trained_extra: int  # what a trained layer saves more: its linears' inputs, the norms' outputs
    norm_weight_bytes: int  # dtype of a norm's normalized input (Gemma's norms compute in fp32)

    @property
    def frozen(self) -> int:
        return self.norms + self.attention + self.mlp + self.adapters

    @property
    def trained(self) -> int:
        return self.norms + self.attention + self.mlp + self.trained_extra


@dataclass(frozen=True)
class _Activations:
    layer: int  # one layer's saved activations (recomputed under checkpointing, the backward's layer)
    saved: int  # everything autograd holds at the end of the forward pass
    per_token: _LayerTokens
    adapter_input_bytes: int  # dtype of the input an adapter saves


def _activations(s: Setup, f: ModelFacts, ov: Overheads, p_train: int, notes: list[str]) -> _Activations:
    L, h, p, T = f.num_layers, f.hidden_size, s.p, s.tokens
    # PEFT casts each adapter's input to its fp32 weights' dtype: a private fp32 copy per adapter.
    # Under autocast with that cast off, the adapter saves the bf16 input itself.
    p_adapter_in = p if s.autocast else max(p, s.recipe.adapter_bytes)
    tok = _layer_tokens(s, f, p_adapter_in)
    grad_layers = L
    if s.family == "freeze" and not s.terms.train_embeddings:
        grad_layers = min(L, max(1, s.terms.trainable_layers))  # backward stops at the lowest trained layer
    trained_layers = {"full": L, "galore": L, "lisa": min(L, s.terms.trainable_layers),
                      "freeze": min(L, max(1, s.terms.trainable_layers))}.get(s.family, 0)
    a_layer = int((tok.trained if trained_layers else tok.frozen) * T * ov.activation_scale)
    # final norm: fp32 input copy; its normalized input when its weight trains; the head's input
    final = (4 * h + (tok.norm_weight_bytes * h if s.terms.full_parameter else 0)
             + (p * h if s.terms.head_trains else 0)) * T
    if s.family == "lora" and s.autocast and not s.gc:
        # autocast caches a compute-dtype copy of every fp32 adapter weight for the forward, and
        # the adapters' matmuls keep them for backward (with checkpointing only the cache holds
        # them, until the forward ends: a few MiB)
        final += p * p_train
    # one decoder layer's input, what checkpointing keeps per layer
    checkpoint = (4 if (_kbit_prep(s) or s.precision == "fp32") else p) * h * T
    if s.gc and s.offload:
        # The worker's save_on_cpu keeps every layer's input in pinned CPU memory; the one being
        # recomputed is copied back just before its layer runs again (counted at every instant: the
        # top layer's input at the loss, as it may still be in flight to the host). What else is
        # saved outside the layers (final norm, head input, the chunked loss's gradient) goes too;
        # it stays counted here, on the safe side.
        saved = min(grad_layers, 1) * checkpoint + final
        pinned = grad_layers * checkpoint + final
        notes.append(f"checkpoints offloaded to CPU memory: ~{pinned / GIB:.1f} GiB of pinned RAM")
    elif s.gc:
        saved = grad_layers * checkpoint + final
    else:
        frontier = _frontier_skip(s, f, tok) if grad_layers == L else 0
        saved = int((((grad_layers - trained_layers) * tok.frozen + trained_layers * tok.trained - frontier) * T)
                    * ov.activation_scale) + final
    return _Activations(layer=a_layer, saved=saved, per_token=tok, adapter_input_bytes=p_adapter_in)


def _layer_tokens(s: Setup, f: ModelFacts, p_adapter_in: int) -> _LayerTokens:
    h, p = f.hidden_size, s.p
    hq, hkv, heads = f.num_heads * f.head_dim, f.num_kv_heads * f.head_dim, f.num_heads
    # SDPA repeats k/v to every query head when it gets a mask: packed sequences (transformers
    # builds a block-diagonal mask) or padded batches in a recipe that passes the padding mask.
    mask = s.packing or (s.batch > 1 and s.recipe.mask_when_padded)
    repeat_kv = f.num_kv_heads < f.num_heads and (s.attention == "eager" or (s.attention == "sdpa" and mask))
    hkv_saved = hq if repeat_kv else hkv
    qk_norm = f.model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2")
    fused = s.fused_kernels or s.compiled
    if fused:
        norm_tok = f.norms_per_layer * (p * h + 4)  # Liger RMSNorm keeps its input and an fp32 rstd
    else:
        norm_tok = f.norms_per_layer * 4 * h  # every RMSNorm keeps an fp32 copy of its input
    if s.attention == "eager":
        # q, k and v at full head count for the two matmuls, fp32 softmax + bf16 probabilities per
        # query/key pair (Gemma 2's tanh soft-cap keeps one more)
        attn_tok = 3 * p * hq + (4 + p + (p if f.model_type == "gemma2" else 0)) * heads * s.seq
    else:
        # q, k, v, output and the fp32 logsumexp; a fused qkv projection (Phi-3) keeps v as a view,
        # so the whole qkv output stays alive
        attn_tok = p * (2 * hq + 2 * hkv_saved) + 4 * heads
        if f.model_type in ("phi3", "phimoe"):
            attn_tok += p * (hq + hkv)
    if qk_norm:
        attn_tok += 4 * (hq + hkv)  # q/k norms keep fp32 copies too
    if f.num_experts:
        moe_f = next((m.out_features for m in f.expert_shapes if m.name in ("gate_proj", "up_proj", "w1")),
                     f.intermediate_size)
        mlp_tok = 3 * p * moe_f * max(1, f.experts_per_token) + 4 * f.num_experts
        mlp_tok += sum(3 * p * m.out_features for m in f.linear_shapes if m.name.startswith("shared_expert.")
                       and m.name.endswith("up_proj"))
    else:
        # gate, silu(gate), up; Liger's fused SwiGLU (and inductor) recompute silu in backward
        mlp_tok = (2 if fused else 3) * p * f.intermediate_size
    # full training also keeps the inputs of every trained linear and each norm's normalized input
    # (Gemma's norms compute in fp32 and keep it in fp32)
    norm_w = 4 if f.model_type.startswith("gemma") else p
    full_extra_tok = norm_w * f.norms_per_layer * h + p * (2 * h + hq + f.intermediate_size)
    if qk_norm:
        full_extra_tok += p * (hq + hkv)
    return _LayerTokens(norms=norm_tok, attention=attn_tok, mlp=mlp_tok, adapters=_adapter_tokens(s, f, p_adapter_in),
                        trained_extra=full_extra_tok, norm_weight_bytes=norm_w)


def _adapter_tokens(s: Setup, f: ModelFacts, p_adapter_in: int) -> int:
    """Bytes per token the adapters of one layer save beside the frozen layer's own."""
    p, m_ = s.p, s.terms
    adapter_tok = 0
    shared_inputs: set[str] = set()
    for m in m_.targets:
        share = _expert_share(f, m)  # each token visits top-k experts
        if s.family == "lora" and s.autocast:
            # The adapter saves the very tensor the layer computed (no copy): one per distinct input,
            # so q/k/v (or gate/up) share one; dropout makes a private masked copy per adapter.
            group = _input_group(m.name)
            if m_.dropout > 0:
                adapter_tok += share * (p + 1) * m.in_features
            elif group not in shared_inputs:
                shared_inputs.add(group)
                adapter_tok += share * p * m.in_features
            adapter_tok += share * p * m_.rank
        elif s.family == "lora":
            dropout_mask = m.in_features if m_.dropout > 0 else 0
            adapter_tok += share * (p_adapter_in * (m.in_features + m_.rank) + dropout_mask)
        if s.family == "lora" and m_.dora:
            # PEFT's DoRA keeps the adapter result (in the adapter's compute dtype) and the base
            # result for the magnitude's gradient (tests/core/test_vram_activations.py: within 1 %).
            adapter_tok += share * (p_adapter_in + p) * m.out_features
        elif s.family == "ia3":
            # PEFT's IA3 scales a feed-forward input after casting it to the vector's dtype (fp32),
            # and any other module's output in its own dtype
            # (an explicit cast in PEFT's IA3 layer: autocast does not remove it)
            adapter_tok += share * (max(p, s.recipe.adapter_bytes) * m.in_features if m.name in m_.ia3_ff
                                    else p * m.out_features)
        elif s.family == "waveft":
            adapter_tok += share * max(p, s.recipe.adapter_bytes) * m.in_features  # not verified under autocast
    return adapter_tok


def _expert_share(f: ModelFacts, m: LinearShape) -> int:
    """How many copies of a module a token passes through: top-k of an expert, else one."""
    return (f.experts_per_token or 1) if m.count > 1 else 1


def _input_group(name: str) -> str:
    """Modules of a layer that read the same input tensor (q/k/v, gate/up) share one group."""
    short = name.rsplit(".", 1)[-1]
    if short in _ATTENTION_MODULES:
        return "attention_in"
    if short in _MLP_INPUT_MODULES:
        return "mlp_in"
    return name


_ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "qkv_proj", "c_attn", "query_key_value", "Wqkv")
_MLP_INPUT_MODULES = ("gate_proj", "up_proj", "gate_up_proj", "c_fc", "w1", "w3", "fc1")


def _frontier_skip(s: Setup, f: ModelFacts, tok: _LayerTokens) -> int:
    """Per-token bytes the first layer does NOT save because nothing before its first trainable
    module needs a gradient (frozen embeddings, no checkpointing): autograd saves a tensor only on
    the way to something trainable."""
    if s.family not in ("lora", "ia3", "waveft"):
        return 0  # trained embeddings, virtual tokens or trained layers: everything is on the path
    names = {m.name for m in s.terms.targets}
    per_norm = tok.norms // max(1, f.norms_per_layer)
    if names & set(_ATTENTION_MODULES):
        return per_norm  # only the input norm's copy, before q/k/v
    # norms up to the MLP's input: all of them, except Gemma's norm after the MLP
    norms_before_mlp = per_norm * (f.norms_per_layer - (1 if f.norms_per_layer == 4 else 0))
    if any(n in names for n in ("gate_proj", "up_proj", "gate_up_proj", "c_fc", "w1", "w3")):
        return norms_before_mlp + tok.attention  # the attention block and the norms before the MLP
    if names and names <= {"down_proj", "mlp.c_proj", "w2"}:
        return norms_before_mlp + tok.attention + tok.mlp  # only the down projection's own input is kept
    return per_norm


# ---- the adapters' own working sets -------------------------------------------------------------

def _adapter_working_sets(s: Setup, f: ModelFacts, act: _Activations) -> tuple[int, int]:
    """(forward, backward) bytes an adapted module's own computation holds at once, the largest."""
    if s.family == "lora" and s.gc:
        return _lora_working_sets(s, f, act)
    if s.family == "ia3":
        return _ia3_working_sets(s, f)
    return 0, 0


def _lora_working_sets(s: Setup, f: ModelFacts, act: _Activations) -> tuple[int, int]:
    # A LoRA layer's own working set under checkpointing, from the worker's real step traced on the
    # CPU (benchmarks/vram_cpu_trace.py). PEFT computes result + lora_B(lora_A(x)) * scaling:
    # with fp32 adapters the branch is fp32 (lora_B's output, its scaled copy, the fp32 sum: 8 B per
    # output element beyond the bf16 tensors), under autocast it stays in the compute dtype.
    # Forward, per target: the layer input, the module's input (and its fp32 copy), the base
    # output and the branch. Backward, per target: on the output side the output's gradient, its
    # copy for the base and the branch's gradients (only the tensors saved before this module are
    # still alive then: an MLP-input target's backward runs after the MLP's own saves are freed);
    # on the input side the gradients from the base and from the adapter.
    # Without checkpointing these coincide with saved tensors and the loss spike (the measured
    # rows need no extra term); with it the first forward keeps only layer inputs, and the
    # recompute + backward of the top layer holds the peak, so they add there.
    p, h, m_ = s.p, f.hidden_size, s.terms
    copy = 0 if s.autocast else 4
    out_bwd = 2 * p if s.autocast else 2 * p + 8  # per output element, backward
    out_fwd = 3 * p if s.autocast else p + 8  # per output element, forward
    # per input element, backward: the adapter's fp32 input gradient and its cast (the base's
    # gradient comes after the cast, the fp32 one is gone by then); under autocast the base's
    # and the adapter's gradients (summed in place)
    in_bwd = 2 * p if s.autocast else p + 4
    tail = act.per_token.mlp + sum(act.adapter_input_bytes * (t.in_features + m_.rank) for t in m_.targets
                                   if t.name.rsplit(".", 1)[-1] in ("down_proj", "w2", "fc2", "c_proj"))
    fwd_max = bwd_max = 0
    for m in m_.targets:
        share = _expert_share(f, m)
        fwd = (p + copy) * m.in_features + out_fwd * m.out_features
        out_side = out_bwd * m.out_features - (tail if m.name.rsplit(".", 1)[-1] in _MLP_INPUT_MODULES else 0)
        in_side = in_bwd * m.in_features
        fwd_max = max(fwd_max, share * fwd + p * h)
        bwd_max = max(bwd_max, share * max(out_side, in_side) + p * h)
    return fwd_max * s.tokens, bwd_max * s.tokens


def _ia3_working_sets(s: Setup, f: ModelFacts) -> tuple[int, int]:
    # IA3 (PEFT): in the forward, next to the module's own input, a scaled input or output in fp32
    # and its cast back; in the backward the incoming gradient, its fp32 copy, the gradients of the
    # input and of the vector (an fp32 product) and the cast back (benchmarks/vram_cpu_trace.py).
    # These pass alongside everything saved, with or without checkpointing.
    p, h, T = s.p, f.hidden_size, s.tokens
    fwd_max = bwd_max = 0
    for m in s.terms.targets:
        share = _expert_share(f, m)
        n = m.in_features if m.name in s.terms.ia3_ff else m.out_features
        fwd_max = max(fwd_max, (share * (2 * p + 4) * n + p * h) * T)  # + the caller's input
        bwd_max = max(bwd_max, share * (p + 12) * n * T)
    return fwd_max, bwd_max


# ---- logits and loss ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Loss:
    memory: int  # the loss's working set beside the forward's saved tensors
    logits: int  # logits one slice holds (the whole batch with the standard loss)
    head_backward: int  # the chunked loss's fp32 head-gradient copies at the start of the backward pass
    fp32_logits: bool  # the logits are fp32 already (fp32 runs, kbit prep)


def _logits_and_loss(s: Setup, f: ModelFacts, ov: Overheads) -> _Loss:
    h, V, T, p = f.hidden_size, f.vocab_size, s.tokens, s.p
    logit_fp32 = _kbit_prep(s) or p == 4
    head_trains = s.terms.head_trains
    if s.loss == "standard":
        # fp32 log-softmax output saved + its incoming gradient + the gradient it produces (12 B per
        # logit); transformers' loss also keeps the logits themselves (+2 B bf16, +4 B fp32).
        n_logits = T * V
        loss_mem = (12 + ((4 if logit_fp32 else 2) if s.recipe.loss_keeps_logits else 0)) * n_logits
    else:
        # The studio's chunked loss (studio/worker/loss.py): fp32 logits one slice of at most
        # CHUNK_BYTES at a time, worked on in place (softmax and gradient reuse the logits'
        # storage), next to the bf16 product it was cast from or the bf16 gradient it is cast to:
        # one and a half slices (benchmarks/vram_cpu_trace.py: 1.55 slices, Qwen2.5 shape, 2048
        # tokens). Plus the final hidden states, the selected loss rows and their precomputed
        # gradient; for a trained head also an fp32 gradient of the head.
        rows = chunk_rows(V)  # the worker's slice (studio.core.engine_rules)
        chunk = 4 * V * min(T, rows)
        n_logits = chunk // 4
        slices = 1.5
        loss_mem = int(slices * chunk) + 3 * p * h * T + (4 * V * h if head_trains else 0)
    # The chunked loss's backward scales its saved fp32 head gradient by the incoming gradient (a
    # second fp32 copy) before the bf16 result becomes the head's .grad: 8 B per head weight on
    # top of that gradient, at the very start of the backward pass (measured on the H100: full
    # fine-tuning of Gemma-3-1B, 262k x 1152 head, peaks there).
    head_bwd = 8 * V * h if (s.loss == "chunked" and head_trains) else 0
    return _Loss(memory=int(loss_mem * ov.activation_scale), logits=n_logits, head_backward=head_bwd,
                 fp32_logits=logit_fp32)


# ---- transient buffers --------------------------------------------------------------------------

def _transients(s: Setup, f: ModelFacts, ov: Overheads) -> tuple[int, int]:
    """(the largest forward-side transient, the part of it a 4-bit layer's backward also makes)."""
    m_ = s.terms
    x = 0
    x_dequant = 0
    if m_.quant_bits:
        biggest = max((m.in_features * m.out_features for m in f.linear_shapes), default=0)
        x = x_dequant = m_.compute_bytes * biggest
    if m_.dora:
        # PEFT's DoRA forms lora_B(lora_A(eye(in))) (in x in identity) and, for the column norm,
        # copies of W, of the update, of its scaled form and of their sum, all in the input's dtype:
        # fp32 with PEFT's input cast, the compute dtype under autocast (W's copy is then W itself;
        # counted anyway, on the safe side).
        b = s.p if s.autocast else 4
        x = max(x, max((b * m.in_features ** 2 + 4 * b * m.in_features * m.out_features for m in m_.targets),
                       default=0))
    if s.family == "waveft":
        x = max(x, max((4 * m.in_features * m.out_features for m in m_.targets), default=0))
    return x + ov.cublas_workspace, x_dequant


# ---- the four instants --------------------------------------------------------------------------

def _instants(s: Setup, f: ModelFacts, ov: Overheads, state: _State, act: _Activations, loss: _Loss,
              transients: tuple[int, int]) -> dict[str, dict[str, float]]:
    """What each instant holds beside the persistent state, by component."""
    forward_t, dequant_t = transients
    adapter_fwd, adapter_bwd = _adapter_working_sets(s, f, act)
    g_acc = state.grads if s.grad_accum > 1 else 0
    recompute = act.layer if s.gc else 0
    # The top layer's backward: the generic workspace beside the forward-side transients (DoRA's
    # dense update, dequantization, recomputed with checkpointing), or LoRA's / IA3's own backward
    # working set beside what the backward itself dequantizes.
    layer_workspace = (2 * s.p * f.intermediate_size + 2 * s.p * f.hidden_size) * s.tokens
    bwd_t = max(layer_workspace + forward_t, adapter_bwd + dequant_t + ov.cublas_workspace)
    if s.compiled:
        # A compiled layer's backward is one graph: what it saved stays alive until the whole graph
        # has run, beside buffers it allocates up front, where eager autograd frees each saved
        # tensor as its op's backward ends. Measured on the H100 (grid v3, compiled rows with
        # checkpointing, over the eager step's working set): 0.8-1.3x an MLP's gate and up outputs.
        bwd_t += 2 * s.p * f.intermediate_size * s.tokens
    return {
        # the top layer's forward transients (dequantization, DoRA) come just before the loss
        "loss": dict(gradients=g_acc, activations=act.saved, logits=loss.memory,
                     transients=max(ov.cublas_workspace, forward_t - loss.memory, adapter_fwd - loss.memory)),
        # two instants: the loss node (the head's fp32 gradient copies) runs before the top layer
        # is recomputed and its backward working set exists; the larger one holds the peak
        "backward_start": dict(gradients=g_acc + state.head_grad, activations=act.saved + recompute,
                               logits=max(0, loss.head_backward - recompute - bwd_t), transients=bwd_t),
        "backward_end": dict(gradients=max(g_acc, state.grads), activations=act.layer, logits=0, transients=bwd_t),
        "step": dict(gradients=state.grads, activations=0, logits=0,
                     transients=state.optimizer_temp + ov.cublas_workspace),
    }


# ---- reserved memory ----------------------------------------------------------------------------

def _reserved_slack(s: Setup, f: ModelFacts, ov: Overheads, peak_alloc: float, loss: _Loss) -> int:
    """What the caching allocator reserves beyond the peak allocation."""
    frag = int(peak_alloc * ov.frag_fraction)
    if s.expandable:
        # Expandable segments: freed ranges are reused by requests of any size and new memory is
        # mapped at the segment's end, so checkpointing's mixed sizes leave few gaps: the share of
        # holes between live blocks (frag_fraction) remains. Except for the loss's biggest block,
        # which is never reused in place (H100 grid v3, 42 rows, all on expandable segments):
        # the standard loss leaves one model-dtype logits tensor reserved (2.0-2.5 GiB on the
        # 128k-262k vocabularies at 4-8k tokens), and a trained head's fp32 gradient in the
        # chunked loss its size (full fine-tuning of Qwen2.5-0.5B and Gemma-3-1B).
        if s.loss == "standard":
            frag = max(frag, int(s.p * loss.logits))
        elif s.terms.head_trains:
            frag = max(frag, 4 * f.vocab_size * f.hidden_size)
    elif s.loss == "standard":
        # The loss spike's large blocks stay cached; measured slack ~ one fp32 logits tensor,
        # bounded because later allocations reuse those blocks.
        # (about half of that when the logits are fp32 already and no upcast copy is made)
        # The studio's own standard loss lets the bf16 logits go once the fp32 copy exists, and
        # its cached blocks are reused further: STUDIO_LOGITS_SLACK of transformers' figure.
        k = ov.logits_slack * (1.0 if s.recipe.loss_keeps_logits else STUDIO_LOGITS_SLACK)
        frag += int(min(k * 4 * loss.logits * (0.5 if loss.fp32_logits else 1.0), 0.3 * peak_alloc))
    elif s.gc:
        # With checkpointing the loss spike (the chunked loss's fp32 slices, and the head's fp32
        # gradient when it trains) comes on top of a light forward; its blocks stay cached while
        # the backward's recomputed layers and working set ask for blocks of other sizes, so a
        # share of the spike's segments is still reserved beside the backward's peak (measured
        # on the H100 grid: reserved/allocated 1.04-1.29 with checkpointing, 1.00-1.07 without).
        frag = max(frag, int(GC_SPIKE_SLACK * loss.memory))
    return frag
