"""The engine's speed choices: adapter compute precision, length grouping, the memory-saver preset and
the compile fallback. Each keeps the numbers (within the precision's noise) and says why it was made."""

from __future__ import annotations

import random

import pytest
import torch

from studio.core.config import demo_config
from studio.worker.batching import Batcher, decide_grouping, grouped_micro_batches
from studio.worker.precision import compute_context, decide_adapter_compute


def _bf16_lora(seed: int = 0):
    from peft import LoraConfig, get_peft_model

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2)).to(torch.bfloat16)
    return get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False))


def _saved_bytes_loss_grads(model, ids, compute):
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    model.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), compute():
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return sum(saved), loss.item(), grads


def test_adapters_compute_in_bf16_with_fp32_master_weights():
    ids = torch.randint(0, 64, (2, 32), generator=torch.Generator().manual_seed(1))
    peft_default = _bf16_lora()
    ref_bytes, ref_loss, ref_grads = _saved_bytes_loss_grads(peft_default, ids, compute_context("cpu", None))

    model = _bf16_lora()
    dtype, why = decide_adapter_compute("auto", model, torch.bfloat16, "cpu")
    assert dtype == torch.bfloat16 and "fp32 master weights" in why.value and "14 adapter layers" in why.reason
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)  # master weights stay fp32
    nbytes, loss, grads = _saved_bytes_loss_grads(model, ids, compute_context("cpu", dtype))
    assert loss == pytest.approx(ref_loss, rel=2e-2)
    for name, g in grads.items():
        assert g.dtype == torch.float32
        cos = torch.nn.functional.cosine_similarity(g.flatten(), ref_grads[name].flatten(), dim=0)
        assert cos > 0.98, name
    # No fp32 copies of every adapter's input are kept for backward any more.
    assert nbytes < 0.8 * ref_bytes


def test_adapter_compute_stays_as_peft_does_when_asked_or_pointless():
    model = _bf16_lora()
    assert decide_adapter_compute("fp32", model, torch.bfloat16, "cuda")[0] is None
    assert all(m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled"))
    assert decide_adapter_compute("auto", model, torch.float32, "cpu")[0] is None  # fp32 training: nothing to gain


class _Ex:
    def __init__(self, n: int):
        self.input_ids = [1] * n
        self.labels = [1] * n


def test_grouping_keeps_every_example_once_and_cuts_padding():
    rng = random.Random(0)
    lengths = [int(min(2048, max(32, rng.lognormvariate(6, 0.9)))) for _ in range(1000)]
    examples = [_Ex(n) for n in lengths]
    b = Batcher(examples, 4, 2, seed=3, pad_id=0, attention_mask=False, lengths=lengths)
    on, why = decide_grouping("auto", b)
    assert on and "padding falls from" in why.reason
    b.group_by_length = True
    steps = b.epoch_steps(0)
    seen = sorted(i for step in steps for mb in step for i in mb)
    assert seen == list(range(1000))
    assert b.padding_share(grouped=True) < 0.05 < 0.3 < b.padding_share(grouped=False)
    assert b.epoch_steps(0) == steps and b.epoch_steps(1) != steps  # reproducible per seed, new per epoch
    micro = grouped_micro_batches(list(range(1000)), lengths, 4, seed=1)
    assert [len(m) for m in micro].count(4) == 250


def test_grouping_auto_is_off_for_even_lengths_and_single_rows():
    even = [_Ex(100) for _ in range(50)]
    assert decide_grouping("auto", Batcher(even, 4, 1, 0, 0))[0] is False
    assert decide_grouping("auto", Batcher([_Ex(5), _Ex(500)] * 10, 1, 1, 0, 0))[1].text().startswith("off (one example")
    assert decide_grouping("off", Batcher([_Ex(5), _Ex(500)] * 10, 4, 1, 0, 0))[0] is False


def test_memory_saver_preset_turns_checkpointing_on():
    from studio.worker.engine import decide_checkpointing

    cfg = demo_config().replace("training.preset", "memory_saver")
    on, why = decide_checkpointing(cfg, model=None, device="cuda", log=print)
    assert on and "memory-saver" in why.reason
    assert decide_checkpointing(cfg.replace("training.gradient_checkpointing", "off"), None, "cuda", print)[0] is False


def test_a_failed_first_step_is_undone_and_repeated():
    from studio.worker.loop import TrainLoop

    calls = {"n": 0}
    weight = torch.nn.Parameter(torch.ones(()))
    opt = torch.optim.SGD([weight], lr=0.1)
    loop = TrainLoop.__new__(TrainLoop)
    loop.optimizer = opt

    def step(micro):
        calls["n"] += 1
        if calls["n"] == 1:
            (weight * 5).backward()  # a half-done step leaves gradients behind
            raise RuntimeError("inductor says no")
        assert weight.grad is None  # the retry starts from clean gradients
        return torch.zeros(()), None

    loop._step = step
    undone = []
    loop.on_first_step_error = lambda e: undone.append(str(e)) or True
    loop._first_step([])
    assert calls["n"] == 2 and undone == ["inductor says no"]
    loop.on_first_step_error = lambda e: False  # a cause nobody can undo is raised
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        loop._first_step([])


def test_cudnn_attention_is_left_out_only_when_lengths_vary(monkeypatch):
    from studio.worker.engine import decide_sdpa_backend

    calls = []
    monkeypatch.setattr(torch.backends.cuda, "enable_cudnn_sdp", lambda on: calls.append(on))
    assert "default" in decide_sdpa_backend("cpu", [5, 500]).value and calls == []
    assert "same length" in decide_sdpa_backend("cuda", [1024] * 8).reason and calls == []
    assert "cuDNN left out" in decide_sdpa_backend("cuda", [5, 500]).value and calls == [False]


def test_fp16_full_training_keeps_fp32_master_weights_and_adapters_do_not_need_them():
    from studio.core.config import demo_config
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import Placement
    from studio.worker.precision import master_weights

    full = runtime_for(demo_config().replace("method", {"name": "full"}))
    lora = runtime_for(demo_config())
    dtype, why = master_weights(Placement("cuda", "fp16"), full)
    assert dtype == torch.float32 and "fp16 compute" in why.value
    assert master_weights(Placement("cuda", "bf16"), full) == (None, None)
    assert master_weights(Placement("cuda", "fp16"), lora) == (None, None)
    # Loaded in fp32, the full model then trains under fp16 autocast (the loss scaler needs fp32 gradients).
    model = torch.nn.Linear(4, 4)
    assert decide_adapter_compute("auto", model, torch.float16, "cuda")[0] == torch.float16
