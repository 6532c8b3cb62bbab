"""The activation model against what autograd really saves on the HF + PEFT stack (CPU, tiny models).

A saved-tensors hook records every tensor autograd keeps during the forward pass (by storage, so
views count once; parameters excluded); the ones still alive when the forward ends are the saved
activations. The estimator's ``saved_activations`` must match them: this pins the per-layer formula
(RMSNorm fp32 copies, attention, SwiGLU, per-adapter input copies, the first layer's frontier,
checkpointed layer inputs, fused qkv views, Gemma's fp32 norms) for four architecture families.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from studio.core.config import RunConfig  # noqa: E402
from studio.core.models import facts_from_config  # noqa: E402
from studio.core.vram import STUDIO, Overheads, estimate_setup, hf_peft_recipe  # noqa: E402
from studio.core.vram.plan import _config_view  # noqa: E402
from studio.core.vram.setup import resolve_setup  # noqa: E402

ZERO = Overheads(cuda_context=0, cublas_workspace=0, frag_fraction=0.0, logits_slack=0.0)
B, S, H = 2, 64, 256


def _measure(model_type: str, method: str, gc: bool, mask: bool, compute: str = "fp32") -> tuple[int, int]:
    """(measured, estimated) saved bytes. ``compute='auto'``: the studio's adapter compute, the
    forward under CPU autocast (bf16) with PEFT's input cast off, as studio/worker/precision.py does."""
    from peft import IA3Config, LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = AutoConfig.for_model(model_type, hidden_size=H, num_hidden_layers=2, num_attention_heads=4,
                               num_key_value_heads=2, intermediate_size=512, vocab_size=1000,
                               tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    cfg._attn_implementation = "eager" if model_type == "gemma2" else "sdpa"
    model = AutoModelForCausalLM.from_config(cfg).to(torch.bfloat16)
    if gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    mlp_only = ["gate_proj", "up_proj", "down_proj"]
    if method in ("lora", "dora", "lora-mlp"):
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, use_dora=method == "dora",
                                                 target_modules=mlp_only if method == "lora-mlp" else "all-linear"))
        body = model.get_base_model().model
    elif method == "ia3":
        model = get_peft_model(model, IA3Config(target_modules=["k_proj", "v_proj", "down_proj"],
                                                feedforward_modules=["down_proj"]))
        body = model.get_base_model().model
    else:
        body = model.model
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    refs: dict[int, tuple] = {}

    def pack(t):
        # Keyed by address, held by a weak reference to the storage itself (a view may die while its
        # storage lives on); an address whose storage died may be reused by a later saved tensor,
        # which then replaces the dead entry instead of being skipped.
        st = t.untyped_storage()
        ptr = st.data_ptr()
        old = refs.get(ptr)
        if ptr not in params and (old is None or old[0]() is None):
            refs[ptr] = (weakref.ref(st), st.nbytes())
        return t

    ids = torch.randint(3, 1000, (B, S))
    am = None
    if mask:
        am = torch.ones(B, S, dtype=torch.long)
        am[0, -4:] = 0
    ctx = contextlib.nullcontext()
    if compute == "auto":
        for module in model.modules():
            if hasattr(module, "cast_input_dtype_enabled"):
                module.cast_input_dtype_enabled = False
        ctx = torch.autocast("cpu", dtype=torch.bfloat16)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), ctx:
        out = body(input_ids=ids, attention_mask=am, use_cache=False).last_hidden_state
    measured = sum(n for r, n in refs.values() if r() is not None)
    del out

    facts = facts_from_config(cfg.to_dict())
    fields = {"r": 8, "target_modules": mlp_only} if method == "lora-mlp" else (
        {"r": 8} if method in ("lora", "dora") else {})
    view = _config_view(RunConfig(), "lora" if method == "lora-mlp" else method, fields, S)
    # autograd's saved tensors of the eager step: the compiled step keeps less (test_vram_engine.py)
    view.training = view.training.model_copy(update={"adapter_compute": compute, "compile": "off"})
    if method == "ia3":
        view.method = view.method.model_copy(update={"target_modules": ["k_proj", "v_proj", "down_proj"]})
    # with a padding mask: the plain recipe's behaviour; without: the studio's (no kernels installed here)
    recipe = replace(hf_peft_recipe(kbit_prep=False) if mask else STUDIO, fused_kernels=False)
    est = estimate_setup(replace(resolve_setup(view, facts, gc=gc, recipe=recipe), batch=B), facts, ZERO)
    head_input = 2 * H * B * S if method == "full" else 0  # the lm_head is not run here
    return measured, est.saved_activations - head_input


CASES = [
    ("llama", "lora", False, False), ("llama", "lora", True, False), ("llama", "lora", False, True),
    ("llama", "ia3", False, False), ("llama", "full", False, False), ("llama", "full", True, False),
    ("llama", "dora", False, False), ("llama", "lora-mlp", False, False),
    ("qwen3", "lora", False, False), ("qwen3", "full", False, True),
    ("gemma2", "lora", False, False), ("gemma2", "full", True, False),
    ("phi3", "lora", False, False), ("phi3", "ia3", False, False),
]


# The studio's adapter compute (training.adapter_compute 'auto'): bf16 autocast, no fp32 input copies.
AUTOCAST_CASES = [
    ("llama", "lora", False, False), ("llama", "lora", True, False), ("llama", "lora-mlp", False, False),
    ("qwen3", "lora", False, False), ("phi3", "lora", False, False), ("llama", "ia3", False, False),
    ("llama", "dora", False, False),
]


@pytest.mark.parametrize("model_type, method, gc, mask", AUTOCAST_CASES)
def test_saved_activations_under_autocast_match_autograd(model_type, method, gc, mask):
    measured, estimated = _measure(model_type, method, gc, mask, compute="auto")
    error = (estimated - measured) / measured
    assert abs(error) <= 0.065, f"{error:+.1%}"


def test_autocast_saves_less_than_fp32_adapter_compute():
    """The engine change the estimator models: adapter inputs are no longer copied to fp32."""
    fp32_measured, fp32_estimated = _measure("llama", "lora", False, False)
    auto_measured, auto_estimated = _measure("llama", "lora", False, False, compute="auto")
    assert auto_measured < 0.8 * fp32_measured
    saved_measured = fp32_measured - auto_measured
    saved_estimated = fp32_estimated - auto_estimated
    assert abs(saved_estimated - saved_measured) <= 0.1 * saved_measured


@pytest.mark.parametrize("model_type, method, gc, mask", CASES)
def test_saved_activations_match_autograd(model_type, method, gc, mask):
    measured, estimated = _measure(model_type, method, gc, mask)
    error = (estimated - measured) / measured
    # DoRA included: its old "+12.5..13.8 %" was the hook skipping tensors saved at an address an
    # earlier, freed saved tensor had used (pack() now replaces dead entries); measured right, the
    # adapter result and the base result are what DoRA adds, within 1 %.
    assert abs(error) <= 0.065, f"{error:+.1%}"
