"""The training engine's rules that the worker follows and the VRAM estimator predicts: one home each.

Each rule is a number or a small function of the config and the model's shape; the worker
(studio/worker/engine.py, kernels.py, loss.py) applies it and the estimator
(studio/core/vram/setup.py) assumes it, so the estimate describes the step the worker will run.
No torch here: the GUI asks these questions too.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Optional

# ---- compile -----------------------------------------------------------------------------------
# Below this many optimizer steps a compile of the decoder layers (tens of seconds) costs more than
# it saves; 'auto' compiles CUDA runs at least this long.
COMPILE_MIN_STEPS = 30


def compile_wanted(setting: str, total_steps: int) -> bool:
    """The compile setting's answer before the device and triton are asked: 'on', or 'auto' on a long run."""
    if setting == "auto":
        return total_steps == 0 or total_steps >= COMPILE_MIN_STEPS
    return setting == "on"


def compile_expected(training: Any) -> bool:
    """Will the worker compile the decoder layers (on a CUDA GPU with triton)? 0 max_steps (epochs) is long."""
    return compile_wanted(getattr(training, "compile", "off"), int(getattr(training, "max_steps", 0) or 0))


# ---- the chunked loss --------------------------------------------------------------------------
CHUNK_BYTES = 1 << 28  # fp32 logits per slice of the chunked cross-entropy: 256 MiB


def chunk_rows(vocab: int) -> int:
    """Token rows per slice of the chunked loss for a vocabulary of ``vocab`` (8..8192)."""
    return max(8, min(8192, CHUNK_BYTES // (4 * max(1, vocab))))


# ---- the allocator -----------------------------------------------------------------------------
ALLOC_ENV = "PYTORCH_CUDA_ALLOC_CONF"
EXPANDABLE = "expandable_segments:True"


def expandable_segments(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Does a worker started with ``environ`` use expandable allocator segments? It sets them on
    Linux unless the user configured the allocator themselves (PyTorch supports them on Linux)."""
    value = environ.get(ALLOC_ENV)
    if value is not None:
        return "expandable_segments:true" in value.replace(" ", "").lower()
    return platform.startswith("linux")


# ---- checkpointing and its offload --------------------------------------------------------------
def memory_saver(config: Any) -> bool:
    """The memory-saver preset: 'auto' checkpointing is on whatever the budget."""
    return getattr(config.training, "preset", "fastest") == "memory_saver"


# Offloading copies each layer's input to the CPU in forward and back in backward, on the compute
# stream: bytes per token grow with the hidden size, the step's work with the layer's parameters
# and its attention span. Calibrated on one H100 (memory-saver, compiled, 4 x 1024 tokens):
# Llama-3.1-8B lost 10.4 % of its speed, Llama-3.2-1B 26 % (benchmarks/results/engine-2026-11-24).
OFFLOAD_COST_SCALE = 7000.0
OFFLOAD_MAX_COST = 0.15  # 'auto' offloads under the memory-saver preset when it costs at most this
OFFLOAD_MAX_RAM_SHARE = 0.5  # ... and when the pinned checkpoints take at most this share of free RAM


def offload_cost(facts: Any, seq: int) -> float:
    """Estimated share of a checkpointed step that offloading its checkpoints adds."""
    q = facts.num_heads * facts.head_dim
    work = facts.layer_linear_params + (facts.layer_expert_params and facts.layer_expert_params * max(
        1, facts.experts_per_token) // max(1, facts.num_experts)) + 2 * seq * q
    return OFFLOAD_COST_SCALE * facts.hidden_size / max(1, work)


def offload_expected(config: Any, facts: Optional[Any] = None) -> bool:
    """Will the worker offload the checkpoints once checkpointing is on? Never on the CPU; 'on', or
    'auto' under the memory-saver preset where the copies cost little (offload_cost)."""
    t = config.training
    if str(getattr(t, "device", "auto")) == "cpu":
        return False
    setting = getattr(t, "offload_checkpoints", "auto")
    if setting != "auto":
        return setting == "on"
    if not memory_saver(config):
        return False
    return facts is None or offload_cost(facts, int(getattr(t, "max_seq_len", 1024))) <= OFFLOAD_MAX_COST
