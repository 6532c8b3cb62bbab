"""Offloaded checkpoints: the layers' checkpointed inputs go through PyTorch's save_on_cpu, the numbers
stay the same, weights stay where they are, and the choice is recorded with its reason.

On the CPU save_on_cpu keeps the very tensors (nothing to copy), so losses and gradients must match
exactly; the hooks still run, which is what these tests watch."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from worker_helpers import Recorder

from studio.core.config import demo_config
from studio.core.engine_choice import SET_OFF, SET_ON, Choice
from studio.worker.engine import decide_offload, enable_checkpointing, offload_context
from studio.worker.loss import loss_sum

LAYERS, HIDDEN, VOCAB = 3, 64, 96


def _lora_llama(seed: int = 0):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=128,
                                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2))
    enable_checkpointing(model)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    model.train()
    return model


class _Batch:
    def __init__(self, ids):
        self.input_ids, self.labels = ids, ids.clone()

    def model_inputs(self):
        return {"input_ids": self.input_ids}


def _loss_and_grads(model, batch, impl, context):
    model.zero_grad(set_to_none=True)
    with context():
        loss = loss_sum(model, batch, impl)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("impl", ["chunked", "standard"])
def test_offload_keeps_loss_and_lora_gradients_and_moves_only_activations(impl):
    batch = _Batch(torch.randint(0, VOCAB, (2, 24), generator=torch.Generator().manual_seed(1)))
    model = _lora_llama()
    ref_loss, ref_grads = _loss_and_grads(model, batch, impl, contextlib.nullcontext)
    make = offload_context(model)
    head = model.get_output_embeddings().weight.untyped_storage().data_ptr()
    packed: list[tuple[tuple[int, ...], bool, bool]] = []

    def spying():
        hooks = make()
        pack = hooks.pack_hook

        def spy(t):
            out = pack(t)
            # a tuple = went through save_on_cpu
            packed.append((tuple(t.shape), isinstance(out, tuple), t.untyped_storage().data_ptr() == head))
            return out

        hooks.pack_hook = spy
        return hooks

    loss, grads = _loss_and_grads(model, batch, impl, spying)
    assert loss == ref_loss
    assert grads.keys() == ref_grads.keys() and len(grads) == LAYERS * 7 * 2
    for name, g in grads.items():
        assert torch.equal(g, ref_grads[name]), name
    # Every decoder layer's input (batch x length x hidden) was handed to save_on_cpu ...
    layer_inputs = [moved for shape, moved, _ in packed if shape == (2, 24, HIDDEN)]
    assert len(layer_inputs) >= LAYERS and all(layer_inputs)
    # ... and no weight was: the standard loss's matmul saves the frozen output layer, which stays put.
    head_saved = [moved for _, moved, is_head in packed if is_head]
    assert (head_saved == [False]) if impl == "standard" else not head_saved


def test_the_loop_offloads_training_forwards_only_and_the_losses_match():
    from transformers import get_scheduler, set_seed

    from studio.worker.batching import Batcher, EvalBatches
    from studio.worker.data import prepare_data
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, load_tokenizer, resolve_placement
    from studio.worker.loop import TrainLoop

    cfg = demo_config().replace("training.logging_steps", 1).replace("data.validation_split", 0.0)
    tok = load_tokenizer(cfg)
    data = prepare_data(cfg, tok, log=lambda s: None)

    def run(offload: bool):
        set_seed(0)
        runtime = runtime_for(cfg)
        model, _ = load_model(cfg, resolve_placement(cfg))
        enable_checkpointing(model)
        model = runtime.wrap(model)
        opt = runtime.make_optimizer(model)
        entered = []
        make = offload_context(model)
        batcher = Batcher(data.train, 4, 2, 0, tok.pad_token_id, attention_mask=False)
        rec = Recorder()
        loop = TrainLoop(model=model, runtime=runtime, optimizer=opt, scheduler=get_scheduler("constant", opt),
                         batcher=batcher, val_batches=EvalBatches(data.train[:8], 4, tok.pad_token_id, False),
                         cfg=cfg, reporter=rec, device="cpu", loss_impl="chunked", total_steps=2,
                         offload=(lambda: entered.append(1) or make()) if offload else None)
        loop.run()  # ends with an evaluation, which must not enter the offload context
        return [e["loss"] for e in rec.events if e["type"] == "step"], len(entered)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain, _ = run(False)
        offloaded, entered = run(True)
    finally:
        torch.set_num_threads(threads)
    assert offloaded == plain and len(plain) == 2
    assert entered == 2 * 2  # two steps of two micro-batches; evaluation is not offloaded


def test_decide_offload_rules():
    cfg = demo_config()
    saver = cfg.replace("training.preset", "memory_saver")
    assert decide_offload(saver, "cuda", False) == (False, Choice("off", "needs gradient checkpointing"))
    on, why = decide_offload(saver.replace("training.offload_checkpoints", "on"), "cpu", True)
    assert not on and why.text() == "off (CPU training: activations are already in CPU memory)"
    on, why = decide_offload(saver, "cuda", True)
    assert on and "memory-saver" in why.reason
    assert decide_offload(cfg, "cuda", True)[0] is False  # 'auto' with the fastest preset
    # 'auto' stays off when the pinned checkpoints would crowd the RAM: 8B-like shapes, 4 x 32k tokens
    model = type("M", (), {"config": type("C", (), {"hidden_size": 4096, "num_hidden_layers": 32})()})()
    long = saver.replace("training.max_seq_len", 32768).replace("training.batch_size", 4)
    on, why = decide_offload(long, "cuda", True, model, free_ram=24 * 2**30)
    assert not on and "~34.0 GiB of pinned RAM" in why.reason and "24.0 GiB of RAM is free" in why.reason
    on, why = decide_offload(long, "cuda", True, model, free_ram=256 * 2**30)
    assert on and "(~34.0 GiB)" in why.reason
    assert decide_offload(long.replace("training.offload_checkpoints", "on"), "cuda", True, model, 1.0)[0]
    assert decide_offload(cfg.replace("training.offload_checkpoints", "on"), "cuda", True) == \
        (True, SET_ON)
    assert decide_offload(saver.replace("training.offload_checkpoints", "off"), "cuda", True) == \
        (False, SET_OFF)


def test_the_choice_is_in_engine_json_the_plan_and_the_log(tmp_path, monkeypatch):
    import studio.worker.engine as engine
    from studio.worker.reporter import Reporter
    from studio.worker.train import train

    cfg = (demo_config().replace("training.preset", "memory_saver").replace("training.max_steps", 1)
           .replace("data.validation_split", 0.0))
    assert decide_offload(cfg, "cpu", True)[1].text().startswith("off (CPU training")
    made = []
    original = engine.offload_context
    monkeypatch.setattr(engine, "decide_offload", lambda c, d, gc, model=None: (gc, Choice("on", "as a GPU run would")))
    monkeypatch.setattr(engine, "offload_context", lambda m: made.append(m) or original(m))
    threads = torch.get_num_threads()
    try:
        with Reporter(tmp_path, capture=False) as rep:
            status, _message, _extra = train(cfg, rep)
    finally:
        torch.set_num_threads(threads)
    assert status == "completed" and len(made) == 1
    choices = json.loads((tmp_path / "engine.json").read_text())
    assert choices["gradient_checkpointing"]["value"] == "on"
    assert choices["gradient_checkpointing"]["reason"].startswith("memory-saver")
    assert choices["checkpoint_offload"]["setting"] == "training.offload_checkpoints"
    assert Choice.from_json("checkpoint_offload", choices["checkpoint_offload"]).text() == "on (as a GPU run would)"
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    plan = next(e for e in events if e["type"] == "plan")
    assert plan["choices"]["checkpoint_offload"]["reason"] == "as a GPU run would"
    assert "engine: checkpoint_offload = on" in (tmp_path / "worker.log").read_text()


def test_auto_offloads_under_the_memory_saver_only_where_the_copies_are_cheap():
    """Copy cost grows with the hidden size, the step's work with the layer's parameters: on the
    H100 offloading cost Llama-3.1-8B 10% of its speed and Llama-3.2-1B 26%; 'auto' keeps it at
    most 15%."""
    from transformers import AutoConfig

    from studio.core.models import catalog_facts
    from studio.core.engine_rules import OFFLOAD_MAX_COST, offload_cost

    saver = (demo_config().replace("training.preset", "memory_saver").replace("training.batch_size", 4)
             .replace("training.max_seq_len", 1024))
    shapes = {"1B": dict(hidden_size=2048, intermediate_size=8192, num_attention_heads=32, num_key_value_heads=8,
                         num_hidden_layers=16, vocab_size=128256),
              "8B": dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
                         num_hidden_layers=32, vocab_size=128256)}
    decided = {}
    for name, kw in shapes.items():
        model = type("M", (), {"config": AutoConfig.for_model("llama", **kw)})()
        decided[name] = decide_offload(saver, "cuda", True, model, free_ram=256 * 2**30)
    assert decided["8B"][0] and not decided["1B"][0]
    assert "~22% of each step" in decided["1B"][1].reason and "offload_checkpoints: on" in decided["1B"][1].reason
    assert offload_cost(catalog_facts("Llama-3.1-8B"), 1024) <= OFFLOAD_MAX_COST
    # long context: attention work grows, the copies' share falls
    assert offload_cost(catalog_facts("Llama-3.2-1B"), 16384) < OFFLOAD_MAX_COST < offload_cost(
        catalog_facts("Llama-3.2-1B"), 1024)
    # the setting still wins
    model = type("M", (), {"config": AutoConfig.for_model("llama", **shapes["1B"])})()
    assert decide_offload(saver.replace("training.offload_checkpoints", "on"), "cuda", True, model)[0]
