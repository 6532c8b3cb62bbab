"""Method configs: validation with clear messages, form metadata, availability and model problems."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from studio.core.config import RunConfig, describe_validation_error
from studio.core.methods import METHOD_CLASSES, MethodConfig, method_class, method_names
from studio.core.methods.patterns import parse_layer_map, parse_layer_set, parse_pattern_map
from studio.core.models import facts_from_config

LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100}


def test_every_method_is_registered_and_round_trips_through_yaml(tmp_path):
    assert len(set(method_names())) == len(METHOD_CLASSES) >= 18
    for name in method_names():
        cfg = RunConfig().replace("method", {"name": name})
        cfg.save(tmp_path / "c.yaml")
        assert RunConfig.load(tmp_path / "c.yaml").method == cfg.method
        assert method_class(name) is type(cfg.method)


def test_every_field_has_a_title_and_a_description():
    for cls in METHOD_CLASSES:
        info = cls.info
        assert info.title and info.summary and info.when_to_pick and info.costs
        assert info.merge_note, f"{cls.__name__}: say how merging works or why it does not"
        for name, field in cls.model_fields.items():
            if name == "name":
                continue
            assert field.title and field.description, f"{cls.__name__}.{name} lacks title/description"


@pytest.mark.parametrize("method, message", [
    ({"name": "lora", "init": "loftq"}, "choose QLoRA"),
    ({"name": "qlora", "init": "pissa"}, "quantized base"),
    ({"name": "qlora", "init": "loftq", "bits": 8}, "Bits to 4"),
    ({"name": "lora", "rank_pattern": "down_proj"}, "pattern=value"),
    ({"name": "lora", "rank_pattern": "down_proj=x"}, "not a whole number"),
    ({"name": "lora", "rank_pattern": "(=4"}, "regular expression"),
    ({"name": "adalora", "init_r": 4, "target_r": 8}, "cannot exceed"),
    ({"name": "adalora", "warmup_share": 0.5, "final_share": 0.5}, "5% of the steps"),
    ({"name": "prompt_tuning", "init": "text"}, "phrase"),
    ({"name": "vblora", "topk": 9, "num_vectors": 4}, "bank holds"),
    ({"name": "qr_adaptor", "layer_ranks": "3-1=8"}, "backwards"),
    ({"name": "lisa", "active_layers": 0}, "greater than or equal to 1"),
])
def test_bad_settings_are_rejected_with_a_message(method, message):
    with pytest.raises(ValidationError) as e:
        RunConfig().replace("method", method)
    assert message in describe_validation_error(e.value)


def test_yaml_mappings_become_the_text_form():
    cfg = RunConfig().replace("method", {"name": "lora", "rank_pattern": {"down_proj": 32, "q_proj": 8}})
    assert cfg.method.rank_map() == {"down_proj": 32, "q_proj": 8}
    qr = RunConfig().replace("method", {"name": "qr_adaptor", "bf16_layers": [0, 3], "layer_ranks": {"0-1": 8}})
    assert qr.method.bf16_set() == [0, 3] and qr.method.rank_table(3) == {0: 8, 1: 8, 2: 16}


def test_pattern_parsers():
    assert parse_pattern_map("a=1; b=2\nc=3") == {"a": 1, "b": 2, "c": 3}
    assert parse_pattern_map("x=0.5", float) == {"x": 0.5}
    assert parse_layer_set("0, 2-4") == [0, 2, 3, 4]
    assert parse_layer_map("0-2=8, 1=0") == {0: 8, 1: 0, 2: 8}


def test_availability_uses_hardware_and_model_facts():
    llama = facts_from_config(LLAMA)
    qwen = facts_from_config({**LLAMA, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]})
    adapter = method_class("llama_adapter")
    assert adapter.availability(has_cuda=False, has_bitsandbytes=False, facts=llama).ok
    no = adapter.availability(has_cuda=True, has_bitsandbytes=True, facts=qwen)
    assert not no.ok and "qwen2" in no.reason
    assert adapter.availability(has_cuda=True, has_bitsandbytes=True).ok  # no model chosen yet
    for name in ("qlora", "qdora", "qr_adaptor"):
        r = method_class(name).availability(has_cuda=False, has_bitsandbytes=True)
        assert not r.ok and "CUDA" in r.reason
    assert method_class("lora").availability(has_cuda=False, has_bitsandbytes=False, facts=qwen).ok


def test_adaption_prompt_model_types_match_peft():
    from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG

    from studio.core.methods.prompts import ADAPTION_PROMPT_MODEL_TYPES

    assert ADAPTION_PROMPT_MODEL_TYPES == frozenset(TRANSFORMERS_MODEL_CONFIG)


def test_problems_name_what_does_not_fit_the_model():
    facts = facts_from_config(LLAMA)
    assert RunConfig().replace("method", {"name": "lora", "target_modules": ["q_proj", "c_attn"]}).method.problems(facts)
    assert not RunConfig().replace("method", {"name": "lora", "target_modules": ["q_proj"]}).method.problems(facts)
    assert "at most 4" in RunConfig().replace("method", {"name": "freeze", "trainable_layers": 9}).method.problems(facts)[0]
    assert "vector_length" in RunConfig().replace("method", {"name": "vblora"}).method.problems(facts)[-1]
    assert not RunConfig().replace("method", {"name": "vblora", "vector_length": 32}).method.problems(facts)
    assert RunConfig().replace("method", {"name": "qr_adaptor", "allocation": "table",
                                          "bf16_layers": "7"}).method.problems(facts)


def test_adalora_schedule_leaves_steps_for_pruning():
    m = method_class("adalora")()
    assert m.schedule(1000) == {"tinit": 100, "tfinal": 200, "total_step": 1000, "deltaT": 10}
    s = m.schedule(3)
    assert s["total_step"] - s["tinit"] - s["tfinal"] >= 1


def test_core_methods_import_without_torch():
    code = ("import sys, studio.core.methods, studio.core.methods.params, studio.core.compare; "
            "assert 'torch' not in sys.modules and 'PySide6' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_lists_and_describes_methods(capsys, monkeypatch):
    from studio.cli import main
    from studio.core import gpu
    from studio.core.paths import demo_model_dir

    monkeypatch.setattr(gpu, "has_cuda_gpu", lambda: False)
    assert main(["methods", "--model", str(demo_model_dir())]) == 0
    out = capsys.readouterr().out
    assert "dora" in out and "adapter only" in out and "unavailable" in out  # QLoRA needs CUDA here
    assert main(["methods", "qr_adaptor"]) == 0
    out = capsys.readouterr().out
    assert "does not run that search" in out and "layer_ranks" in out
    assert main(["methods", "nope"]) == 2
    assert "known methods" in capsys.readouterr().err
