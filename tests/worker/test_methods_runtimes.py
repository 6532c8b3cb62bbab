"""Every method trains, saves, reloads and (where mergeable) merges, through its MethodRuntime hooks.

A tiny Llama (2 layers, hidden 32) learns a counting task for a few steps on the CPU; the loop in
methods_helpers runs the hooks in the worker loop's order (zero_grad before on_step_end).
"""

from __future__ import annotations

import json

import pytest
import torch
from methods_helpers import build_tiny_llama, load_base, logits_of, task_batch, train

from studio.core.config import RunConfig
from studio.worker.methods import runtime_for

STEPS = 8

# name -> (method settings for the tiny model, learning rate that suits it at this size)
CASES = {
    "lora": ({"name": "lora", "r": 4}, 1e-2),
    "lora_rslora_gaussian": ({"name": "lora", "r": 4, "use_rslora": True, "init": "gaussian"}, 1e-2),
    "lora_pissa": ({"name": "lora", "r": 4, "init": "pissa"}, 1e-2),
    "lora_olora": ({"name": "lora", "r": 4, "init": "olora"}, 1e-2),
    "lora_patterns": ({"name": "lora", "r": 4, "rank_pattern": "down_proj=8, layers\\.0\\..*=2",
                       "alpha_pattern": "down_proj=16"}, 1e-2),
    "dora": ({"name": "dora", "r": 4}, 1e-2),
    "loraplus": ({"name": "loraplus", "r": 4}, 5e-3),
    "adalora": ({"name": "adalora", "init_r": 6, "target_r": 2, "update_every": 1}, 2e-2),
    "ia3": ({"name": "ia3"}, 1e-1),
    "vblora": ({"name": "vblora", "vector_length": 16, "num_vectors": 32, "r": 4}, 2e-2),
    "waveft": ({"name": "waveft", "n_frequency": 64}, 1e-2),
    "prompt_tuning": ({"name": "prompt_tuning", "num_virtual_tokens": 4}, 1e-1),
    "prompt_tuning_text": ({"name": "prompt_tuning", "num_virtual_tokens": 4, "init": "text",
                            "init_text": "count up"}, 1e-1),
    "p_tuning": ({"name": "p_tuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16}, 1e-2),
    "prefix_tuning": ({"name": "prefix_tuning", "num_virtual_tokens": 4}, 5e-2),
    "llama_adapter": ({"name": "llama_adapter", "adapter_len": 4, "adapter_layers": 2}, 1e-1),
    "full": ({"name": "full"}, 3e-3),
    "freeze": ({"name": "freeze", "trainable_layers": 1}, 3e-3),
    "lisa": ({"name": "lisa", "active_layers": 1, "interval": 3}, 3e-3),
    "galore": ({"name": "galore", "rank": 4, "update_interval": 4, "scale": 1.0}, 3e-3),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")
    _write_tokenizer(folder)
    return folder


def _write_tokenizer(folder) -> None:
    """A word-level tokenizer so text-initialised prompt tuning can embed its phrase."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "count": 3, "up": 4, "<unk>": 5}
    vocab.update({f"t{i}": i for i in range(6, 64)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(folder)


def config_for(folder, method: dict, lr: float) -> RunConfig:
    return RunConfig.from_dict({"model": {"source": "local", "path": str(folder)}, "method": method,
                                "training": {"learning_rate": lr, "max_steps": STEPS, "seed": 3}})


@pytest.mark.parametrize("case", list(CASES))
def test_method_trains_saves_reloads_and_merges(case, tiny, tmp_path):
    method, lr = CASES[case]
    cfg = config_for(tiny, method, lr)
    x = task_batch()
    torch.manual_seed(0)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    losses = train(model, runtime, x, STEPS)
    assert losses[-1] < losses[0] - 0.005, f"{case}: loss did not fall: {losses}"
    trained = logits_of(model, runtime, x)

    runtime.save(model, tmp_path)
    fresh = runtime_for(cfg)
    reloaded = fresh.load_trained(load_base(tiny), tmp_path)
    assert torch.allclose(logits_of(reloaded, fresh, x), trained, atol=1e-5), f"{case}: reload changed the logits"

    if cfg.method.info.mergeable:
        merged = fresh.merge(reloaded)
        assert not hasattr(merged, "peft_config"), "merge must return a plain transformers model"
        assert torch.allclose(logits_of(merged, fresh, x), trained, atol=1e-4), f"{case}: merged logits differ"
    else:
        assert cfg.method.info.merge_note
        with pytest.raises(ValueError, match="cannot be merged"):
            fresh.merge(reloaded)


def test_loraplus_gives_b_matrices_a_larger_learning_rate(tiny):
    cfg = config_for(tiny, {"name": "loraplus", "r": 4, "lr_ratio": 16}, 1e-3)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    names = {id(p): n for n, p in model.named_parameters()}
    for group in runtime.make_optimizer(model).param_groups:
        kinds = {("B" if "lora_B" in names[id(p)] else "A") for p in group["params"]}
        assert len(kinds) == 1
        assert group["lr"] == pytest.approx(1.6e-2 if kinds == {"B"} else 1e-3)


def test_adalora_schedule_follows_the_run_and_prunes_rank(tiny):
    cfg = config_for(tiny, {"name": "adalora", "init_r": 6, "target_r": 2, "update_every": 1}, 2e-2)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    assert model.peft_config["default"].total_step == STEPS
    train(model, runtime, task_batch(), STEPS)
    assert runtime.global_step == STEPS
    pattern = model.peft_config["default"].rank_pattern
    assert pattern, "the budget was never allocated"
    kept = sum(int(sum(mask)) for mask in pattern.values())
    assert kept < 6 * len(pattern), "no singular value was pruned"
    runtime.on_step_end(model, 1, 40)  # the loop's real total replaces the placeholder schedule
    assert model.peft_config["default"].total_step == 40


def test_adalora_penalty_is_peft_orthogonality_regulariser(tiny):
    cfg = config_for(tiny, {"name": "adalora", "init_r": 6, "target_r": 2, "orth_reg_weight": 0.5}, 2e-2)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    x = task_batch()
    with torch.no_grad():
        with_reg = model(input_ids=x, labels=x).loss  # PEFT's AdaLoraModel adds the penalty to a label loss
        plain = model.base_model.model(input_ids=x, labels=x).loss
    penalty = runtime.penalty(model)
    assert penalty.requires_grad and float(penalty) > 0
    assert float(penalty) == pytest.approx(float(with_reg - plain), rel=1e-4)
    off = runtime_for(config_for(tiny, {"name": "adalora", "init_r": 6, "target_r": 2, "orth_reg_weight": 0.0}, 2e-2))
    assert off.penalty(model) is None
    # The default runtime adds nothing.
    assert runtime_for(config_for(tiny, {"name": "lora", "r": 4}, 1e-2)).penalty(model) is None


def test_lisa_resamples_layers_and_always_trains_embeddings(tiny):
    cfg = config_for(tiny, {"name": "lisa", "active_layers": 1, "interval": 1}, 1e-3)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    runtime.make_optimizer(model)
    seen = set()
    for step in range(1, 12):
        runtime.on_step_end(model, step, 100)
        seen.update(runtime.active)
        active = {i for i, layer in enumerate(runtime.parts.layers) if all(p.requires_grad for _, p in layer)}
        assert active == set(runtime.active) and len(active) == 1
        assert model.get_input_embeddings().weight.requires_grad
        assert model.get_output_embeddings().weight.requires_grad
    assert seen == {0, 1}


def test_freeze_saves_only_the_trained_layers(tiny, tmp_path):
    from safetensors.torch import load_file

    cfg = config_for(tiny, {"name": "freeze", "trainable_layers": 1}, 1e-3)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    runtime.save(model, tmp_path)
    names = set(load_file(str(tmp_path / "trained_weights.safetensors")))
    assert names and all(n.startswith("model.layers.1.") or n == "model.norm.weight" for n in names)


def test_galore_keeps_low_rank_states_and_refreshes_the_projector(tiny):
    from studio.worker.methods.galore import GaLoreAdamW, make_projector, project, project_back

    g = torch.randn(12, 5)
    proj, side = make_projector(g, 3)
    assert side == "right" and proj.shape == (3, 5)
    assert torch.allclose(proj @ proj.T, torch.eye(3), atol=1e-5)
    assert torch.linalg.matrix_rank(project_back(project(g, proj, side), proj, side)) == 3

    w = torch.nn.Parameter(torch.randn(16, 8))
    opt = GaLoreAdamW([{"params": [w], "rank": 2, "update_proj_gap": 3, "scale": 1.0}], lr=0.1)
    projectors = []
    for _ in range(6):
        before = w.detach().clone()
        w.grad = torch.randn(16, 8)
        opt.step()
        assert torch.linalg.matrix_rank(w.detach() - before) <= 2  # updates live in the subspace
        projectors.append(opt.state[w]["proj"].clone())
    assert opt.state[w]["exp_avg"].shape == (16, 2)
    assert torch.equal(projectors[0], projectors[2]) and not torch.equal(projectors[2], projectors[3])

    cfg = config_for(tiny, {"name": "galore", "rank": 4}, 1e-3)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    groups = runtime.make_optimizer(model).param_groups
    assert groups[0]["rank"] == 4 and all(p.ndim == 2 for p in groups[0]["params"])
    assert not any(g.get("rank") for g in groups[1:])


def test_qr_adaptor_table_sets_ranks_and_bf16_layers(tiny, tmp_path):
    from transformers.quantizers.quantizers_utils import should_convert_module

    cfg = config_for(tiny, {"name": "qr_adaptor", "allocation": "table", "r": 4,
                            "layer_ranks": "0=0, 1=8", "bf16_layers": "1"}, 1e-3)
    runtime = runtime_for(cfg)
    skip = runtime.skip_modules()
    assert not should_convert_module("model.layers.1.self_attn.q_proj", skip)
    assert should_convert_module("model.layers.0.self_attn.q_proj", skip)
    assert not should_convert_module("lm_head", skip)
    model = runtime.wrap(load_base(tiny))  # the CPU test skips quantization; the plan still applies
    ranks = {n: p.shape[0] for n, p in model.named_parameters() if "lora_A" in n}
    assert ranks and all(".layers.1." in n and r == 8 for n, r in ranks.items())
    runtime.save(model, tmp_path)
    assert json.loads((tmp_path / "qr_adaptor_plan.json").read_text())["bf16_layers"] == [1]


def test_qr_adaptor_sensitivity_reads_the_weights(tiny):
    from studio.worker.methods.qr_adaptor import nf4_error, nf4_sensitivity

    errors = nf4_sensitivity(tiny, 2)
    assert len(errors) == 2 and all(0 < e < 0.05 for e in errors)
    w = torch.randn(64, 64)
    err, norm = nf4_error(w)
    assert 0 < err / norm < 0.02
    cfg = config_for(tiny, {"name": "qr_adaptor", "allocation": "sensitivity", "r": 8, "bf16_layer_count": 1}, 1e-3)
    plan = runtime_for(cfg).make_plan(weights_folder=tiny)
    assert len(plan["bf16_layers"]) == 1
    assert plan["bf16_layers"][0] == max(range(2), key=lambda i: errors[i])
    assert all(r % 4 == 0 and r >= 4 for r in plan["ranks"].values())


@pytest.mark.parametrize("name", ["lora", "dora"])
def test_rebuilding_an_adapter_on_a_fresh_base_keeps_its_logits(name, tiny):
    """The step QLoRA's merge takes after dequantizing: same config and tensors, new base layers."""
    from studio.worker.methods.peft_base import rebuild_on_dequantized_base

    cfg = config_for(tiny, {"name": name, "r": 4}, 1e-2)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_base(tiny))
    x = task_batch()
    train(model, runtime, x, 3)
    before = logits_of(model, runtime, x)
    rebuilt = rebuild_on_dequantized_base(model)
    assert torch.allclose(logits_of(rebuilt, runtime, x), before, atol=1e-5)
    assert torch.allclose(logits_of(rebuilt.merge_and_unload(), runtime, x), before, atol=1e-4)
