"""The engine's choices change speed and memory, never the numbers: same seed, same data, same losses."""

from __future__ import annotations

import functools

import pytest
from worker_helpers import Recorder

from studio.core.config import demo_config


def _config():
    cfg = demo_config().replace("training.logging_steps", 1).replace("training.grad_accum", 2)
    return cfg.replace("data.validation_split", 0.0)


@functools.lru_cache(maxsize=1)
def _prepared():
    from studio.worker.data import prepare_data
    from studio.worker.modeling import load_tokenizer

    tok = load_tokenizer(_config())
    return tok, prepare_data(_config(), tok, log=lambda s: None)


def _losses(*, loss_impl, padding_free, attention_mask, checkpointing, steps=4):
    from transformers import get_scheduler, set_seed

    from studio.worker.batching import Batcher
    from studio.worker.engine import enable_checkpointing
    from studio.worker.loop import TrainLoop
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, resolve_placement

    cfg = _config()
    set_seed(0)
    runtime = runtime_for(cfg)
    placement = resolve_placement(cfg)
    tok, data = _prepared()
    model, _ = load_model(cfg, placement)
    if checkpointing:
        enable_checkpointing(model)
    model = runtime.wrap(model)
    batcher = Batcher(data.train, 8, 2, 0, tok.pad_token_id, padding_free=padding_free, attention_mask=attention_mask)
    opt = runtime.make_optimizer(model)
    sched = get_scheduler("constant", opt)
    rec = Recorder()
    TrainLoop(model=model, runtime=runtime, optimizer=opt, scheduler=sched, batcher=batcher, val_batches=[], cfg=cfg,
              reporter=rec, device="cpu", loss_impl=loss_impl, total_steps=steps).run()
    return [e["loss"] for e in rec.events if e["type"] == "step"]


@pytest.mark.slow
def test_engine_choices_do_not_change_the_loss():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the engine picks for a model this small; far faster on a busy CPU
    try:
        _compare_recipes()
    finally:
        torch.set_num_threads(threads)


def _compare_recipes():
    plain = _losses(loss_impl="standard", padding_free=False, attention_mask=True, checkpointing=False)
    tuned = _losses(loss_impl="chunked", padding_free=False, attention_mask=False, checkpointing=True)
    packed = _losses(loss_impl="chunked", padding_free=True, attention_mask=False, checkpointing=False)
    assert plain[-1] < plain[0]
    for other in (tuned, packed):
        assert other == pytest.approx(plain, rel=2e-4, abs=2e-5)


def test_the_probe_approves_llama_attention_on_the_demo():
    from studio.worker.engine import decide_batching, probe_attention
    from studio.worker.modeling import load_model, resolve_placement

    cfg = demo_config()
    model, _ = load_model(cfg, resolve_placement(cfg))
    model.train()
    assert probe_attention(model, "cpu")[:2] == (True, True)
    padding_free, mask, reason = decide_batching(cfg, model, "cpu", "sdpa")
    assert not padding_free and not mask and "no attention mask" in reason.value
    assert model.training  # the probe puts the model back in the mode it found it in


def test_engine_json_and_plan_record_every_choice(tmp_path):
    from studio.worker.engine import EngineChoices

    from studio.core.engine_choice import Choice

    e = EngineChoices()
    e.choices.update({"loss": Choice("chunked", "auto"), "batching": Choice("padded")})
    e.write(tmp_path)
    import json

    assert json.loads((tmp_path / "engine.json").read_text()) == {
        "loss": {"value": "chunked", "reason": "auto", "setting": "training.loss_impl"},
        "batching": {"value": "padded", "reason": ""}}
    with pytest.raises(TypeError):
        e.choices["loss"] = "chunked (prose)"  # choices are typed values, never prose
