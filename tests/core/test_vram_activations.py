"""The activation model against what autograd really saves on the HF + PEFT stack (CPU, tiny models).

A saved-tensors hook records every tensor autograd keeps during the forward pass (by storage, so
views count once; parameters excluded); the ones still alive when the forward ends are the saved
activations. The estimator's ``saved_activations`` must match them: this pins the per-layer formula
(RMSNorm fp32 copies, attention, SwiGLU, per-adapter input copies, the first layer's frontier,
checkpointed layer inputs, fused qkv views, Gemma's fp32 norms) for four architecture families.
"""

from __future__ import annotations

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


def _measure(model_type: str, method: str, gc: bool, mask: bool) -> tuple[int, int]:
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
        st = t.untyped_storage()
        if st.data_ptr() not in params and st.data_ptr() not in refs:
            refs[st.data_ptr()] = (weakref.ref(t), st.nbytes())
        return t

    ids = torch.randint(3, 1000, (B, S))
    am = None
    if mask:
        am = torch.ones(B, S, dtype=torch.long)
        am[0, -4:] = 0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = body(input_ids=ids, attention_mask=am, use_cache=False).last_hidden_state
    measured = sum(n for r, n in refs.values() if r() is not None)
    del out

    facts = facts_from_config(cfg.to_dict())
    fields = {"r": 8, "target_modules": mlp_only} if method == "lora-mlp" else (
        {"r": 8} if method in ("lora", "dora") else {})
    view = _config_view(RunConfig(), "lora" if method == "lora-mlp" else method, fields, S)
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


@pytest.mark.parametrize("model_type, method, gc, mask", CASES)
def test_saved_activations_match_autograd(model_type, method, gc, mask):
    measured, estimated = _measure(model_type, method, gc, mask)
    error = (estimated - measured) / measured
    if method == "dora" and not gc:
        # DoRA's extra saves partly coincide with tensors kept anyway; the model stays on the safe side
        # Known over-estimate, +12.5% to +13.8% across runs (which saved tensors share storage varies);
        # tracked in the VRAM issue. The bound keeps it on the safe side and catches a regression.
        assert -0.02 <= error <= 0.18, f"{error:+.1%}"
    else:
        assert abs(error) <= 0.065, f"{error:+.1%}"
