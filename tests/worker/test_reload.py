"""A saved adapter reloads through PEFT with exactly the logits the trained model had."""

from __future__ import annotations

import torch

from studio.core.config import demo_config


def test_saved_adapter_reloads_with_identical_logits(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, load_tokenizer, model_location, resolve_placement
    from studio.worker.saving import save_trained

    cfg = demo_config()
    runtime = runtime_for(cfg)
    placement = resolve_placement(cfg)
    tok = load_tokenizer(cfg)
    model, _ = load_model(cfg, placement)
    model = runtime.wrap(model)
    opt = runtime.make_optimizer(model)
    ids = torch.randint(4, model.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(0))
    for _ in range(3):  # move the adapter away from its zero init
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    with torch.no_grad():
        trained = model(input_ids=ids).logits
    target = save_trained(runtime, model, tok, tmp_path / "adapter", {"step": 3})
    assert (target / "adapter_model.safetensors").exists() and (target / "tokenizer_config.json").exists()
    assert not (tmp_path / "adapter.tmp").exists()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_location(cfg)), target).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, trained)


def test_a_failed_save_keeps_the_previous_one(tmp_path):
    import pytest

    from studio.worker.saving import save_atomically

    target = tmp_path / "adapter"
    save_atomically(target, lambda d: (d / "weights").write_text("good"))

    def broken(d):
        (d / "weights").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        save_atomically(target, broken)
    assert (target / "weights").read_text() == "good"
    assert not (tmp_path / "adapter.tmp").exists()
