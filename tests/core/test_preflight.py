"""preflight(): blocking problems, found before any process starts, said so a user can act."""

from __future__ import annotations

import json

from studio.core.config import RunConfig, demo_config
from studio.core.preflight import preflight


def _cfg(**sections) -> RunConfig:
    data = demo_config().to_dict()
    for name, fields in sections.items():
        data[name].update(fields)
    return RunConfig.from_dict(data)


def test_the_demo_is_ready_to_go():
    assert preflight(demo_config(), has_cuda=False, has_bitsandbytes=False) == []


def test_missing_model_folder(tmp_path):
    problems = preflight(_cfg(model={"source": "local", "path": str(tmp_path / "nope")}), has_cuda=False)
    assert len(problems) == 1 and "not found" in problems[0] and "nope" in problems[0]


def test_folder_without_config_json_points_to_the_nested_one(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "config.json").write_text("{}")
    problems = preflight(_cfg(model={"source": "local", "path": str(tmp_path)}), has_cuda=False)
    assert any("config.json" in p and "inner" in p for p in problems)


def test_unreadable_or_empty_datasets(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert any("empty" in p for p in preflight(_cfg(data={"source": "file", "path": str(empty)}), has_cuda=False))
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n")
    assert preflight(_cfg(data={"source": "file", "path": str(junk)}), has_cuda=False)
    unusable = tmp_path / "unusable.jsonl"
    unusable.write_text("\n".join(json.dumps({"instruction": "q", "output": ""}) for _ in range(3)))
    assert preflight(_cfg(data={"source": "file", "path": str(unusable), "format": "alpaca"}), has_cuda=False)


def test_method_not_available_here():
    cfg = _cfg(method={"name": "qlora"})
    problems = preflight(cfg, has_cuda=False, has_bitsandbytes=False)
    assert any("NVIDIA GPU" in p for p in problems)


def test_cuda_device_without_a_gpu():
    problems = preflight(_cfg(training={"device": "cuda"}), has_cuda=False)
    assert any("no NVIDIA GPU" in p for p in problems)


def test_output_folder_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problems = preflight(demo_config().replace("output_dir", str(blocker / "runs")), has_cuda=False)
    assert any("Output folder" in p for p in problems)


def test_too_little_disk(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 5 << 20))
    problems = preflight(demo_config().replace("output_dir", str(tmp_path)), has_cuda=False)
    assert any("free" in p and "MiB" in p for p in problems)
