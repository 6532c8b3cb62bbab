"""RunConfig: YAML round trip, field-named validation messages, dotted replace, migration guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from studio.core.config import ConfigError, RunConfig, demo_config, describe_validation_error


def test_yaml_round_trip_is_lossless(tmp_path):
    cfg = demo_config().replace("training.max_steps", 7).replace("data.column_map", {"q": "instruction"})
    path = tmp_path / "config.yaml"
    cfg.save(path)
    again = RunConfig.load(path)
    assert again == cfg and again.to_yaml() == cfg.to_yaml()


def test_method_union_round_trips():
    data = RunConfig().to_dict()
    data["method"] = {"name": "qlora", "r": 8}
    cfg = RunConfig.from_dict(data)
    assert cfg.method.name == "qlora" and cfg.method.r == 8
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_validation_messages_name_the_field():
    with pytest.raises(ValidationError) as e:
        RunConfig().replace("training.batch_size", 0)
    msg = describe_validation_error(e.value)
    assert msg.startswith("training.batch_size:") and "greater than or equal to 1" in msg


def test_method_field_errors_hide_the_union_tag():
    with pytest.raises(ValidationError) as e:
        RunConfig().replace("method.r", 0)
    assert describe_validation_error(e.value).startswith("method.r:")


def test_load_reports_the_file_and_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  learning_rate: -1\n")
    with pytest.raises(ConfigError) as e:
        RunConfig.load(path)
    assert str(path) in str(e.value) and "training.learning_rate" in str(e.value)


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        RunConfig.load(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        RunConfig.load(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="YAML"):
        RunConfig.load(tmp_path / "broken.yaml")


def test_unknown_fields_are_rejected():
    data = RunConfig().to_dict()
    data["training"]["learnin_rate"] = 1e-4
    with pytest.raises(ValidationError) as e:
        RunConfig.from_dict(data)
    assert "training.learnin_rate" in describe_validation_error(e.value)


def test_a_newer_schema_is_refused():
    data = RunConfig().to_dict()
    data["schema_version"] = 999
    with pytest.raises(ConfigError, match="newer studio"):
        RunConfig.from_dict(data)


def test_demo_config_selects_the_demo_and_trains_briefly():
    cfg = demo_config()
    assert cfg.model.source == "demo" and cfg.data.source == "demo"
    assert cfg.training.learning_rate > RunConfig().training.learning_rate
    assert cfg.data.validation_split > 0


def test_paths_are_required_unless_demo():
    data = RunConfig().to_dict()
    data["model"] = {"source": "local", "path": " "}
    with pytest.raises(ValidationError) as e:
        RunConfig.from_dict(data)
    assert "choose a model folder" in describe_validation_error(e.value)


def test_replacing_the_method_name_keeps_only_the_settings_the_new_method_has():
    lora = demo_config().replace("method.r", 32)
    dora = lora.replace("method.name", "dora")
    assert dora.method.name == "dora" and dora.method.r == 32  # shared settings survive
    full = lora.replace("method.name", "full")  # `studio train --set method.name=full` on a LoRA config
    assert full.method.name == "full" and "r" not in full.to_dict()["method"]
    with pytest.raises(ValidationError):
        lora.replace("method.name", "no-such-method")
