"""The quantized methods (QLoRA 4/8-bit, QDoRA, QR-Adaptor) on a CUDA GPU with bitsandbytes.

Skipped without a GPU. Same contract as test_methods_runtimes.py: trains with falling loss, saves, reloads
with identical logits, and the merged (dequantized bf16) model matches base + adapter.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from methods_helpers import build_tiny_llama, task_batch

from studio.core.config import RunConfig
from studio.worker.methods import runtime_for

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None,
                       reason="needs a CUDA GPU and bitsandbytes"),
]

CASES = {
    "qlora_nf4": {"name": "qlora", "r": 8, "bits": 4, "quant_type": "nf4", "double_quant": True},
    "qlora_fp4": {"name": "qlora", "r": 8, "bits": 4, "quant_type": "fp4", "double_quant": False},
    "qlora_8bit": {"name": "qlora", "r": 8, "bits": 8},
    "qdora": {"name": "qdora", "r": 8},
    "qr_adaptor": {"name": "qr_adaptor", "allocation": "table", "r": 8, "layer_ranks": "0=4, 1=16", "bf16_layers": "1"},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny") / "model"
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    return folder


def _load(folder, quant=None):
    from transformers import AutoModelForCausalLM

    kwargs = {"quantization_config": quant, "device_map": {"": 0}} if quant is not None else {}
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, **kwargs)
    return model if quant is not None else model.to("cuda")


def _logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(input_ids=x).logits.float()


@pytest.mark.parametrize("case", list(CASES))
def test_quantized_method_trains_reloads_and_merges(case, tiny, tmp_path):
    import bitsandbytes as bnb

    cfg = RunConfig.from_dict({"model": {"source": "local", "path": str(tiny)}, "method": CASES[case],
                               "training": {"learning_rate": 1e-2, "max_steps": 8}})
    runtime = runtime_for(cfg)
    model = runtime.wrap(_load(tiny, runtime.quantization_config(torch.bfloat16)))
    # no blanket fp32 upcast: every frozen floating parameter of the base stays in the compute dtype
    # (the adapters themselves are fp32 by PEFT's design: they are what the optimizer updates)
    upcast = [n for n, p in model.named_parameters()
              if not p.requires_grad and p.is_floating_point() and p.dtype == torch.float32]
    assert not upcast, upcast[:8]
    x = task_batch().cuda()
    optimizer = runtime.make_optimizer(model)
    model.train()
    losses = []
    for step in range(1, 9):
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        runtime.on_step_end(model, step, 8)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses
    trained = _logits(model, x)
    runtime.save(model, tmp_path)

    fresh = runtime_for(cfg)
    reloaded = fresh.load_trained(_load(tiny, fresh.quantization_config(torch.bfloat16)), tmp_path)
    assert torch.allclose(_logits(reloaded, x), trained, atol=1e-2)
    if case == "qr_adaptor":
        q1 = reloaded.get_base_model().model.layers[1].self_attn.q_proj.base_layer
        q0 = reloaded.get_base_model().model.layers[0].self_attn.q_proj.base_layer
        assert not isinstance(q1, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))
        assert isinstance(q0, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt))

    merged = fresh.merge(reloaded)  # dequantizes the base, then folds the adapter in
    assert not any(isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)) for m in merged.modules())
    assert not hasattr(merged.config, "quantization_config")
    assert torch.allclose(_logits(merged, x), trained, atol=5e-2, rtol=5e-2)

    # the export path: an unquantized base plus the adapter, merged, is a plain bf16 model
    export_runtime = runtime_for(cfg)
    exported = export_runtime.merge(export_runtime.load_trained(_load(tiny), tmp_path))
    assert next(exported.parameters()).dtype == torch.bfloat16
    assert torch.isfinite(_logits(exported, x)).all()
