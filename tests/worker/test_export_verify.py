"""Merged and adapter exports are reloaded with plain transformers / PEFT and compared; a damaged one fails."""

from __future__ import annotations

import json

import pytest
from test_resume import _config
from worker_helpers import make_run

from studio.core.protocol import read_events
from studio.worker import train as train_module
from studio.worker.export import main as export_main
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("verify"), _config(max_steps=8, save_steps=0))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)
        assert train_module.main(run.path) == 0
    return run


def _verdict(folder) -> dict:
    return json.loads((folder / "verification.json").read_text())


def test_a_merged_export_reloads_in_plain_transformers_with_the_same_logits(lora_run, tmp_path):
    out = tmp_path / "merged"
    assert export_main(lora_run.path, "merged", out) == 0
    verdict = _verdict(out)
    assert verdict["passed"] and verdict["kind"] == "merged" and "AutoModelForCausalLM" in verdict["criteria"]
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["logits"]["max_abs_diff"] < 1e-4 and checks["greedy"]["passed"] and checks["tokenizer"]["passed"]
    event = [e for e in read_events(lora_run.exports_dir / "export.jsonl") if e["type"] == "verification"][-1]
    assert event["kind"] == "merged" and event["passed"]


def test_an_adapter_export_reloads_in_plain_peft_like_the_studio_loads_it(lora_run, tmp_path):
    out = tmp_path / "adapter"
    assert export_main(lora_run.path, "adapter", out) == 0
    verdict = _verdict(out)
    assert verdict["passed"] and "plain PEFT" in verdict["criteria"]
    assert (out / "adapter_model.safetensors").read_bytes() == (lora_run.adapter_dir / "adapter_model.safetensors"
                                                                ).read_bytes()


def test_no_verify_skips_the_check_and_says_so(lora_run, tmp_path):
    out = tmp_path / "unverified"
    assert export_main(lora_run.path, "adapter", out, verify=False) == 0
    assert not (out / "verification.json").exists()
    done = read_events(lora_run.exports_dir / "export.jsonl")[-1]
    assert done["status"] == "completed" and "(not verified)" in done["message"]


def test_a_damaged_merged_export_fails_verification(lora_run, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file
    from transformers import PreTrainedModel

    real = PreTrainedModel.save_pretrained

    def save_damaged(self, folder, *a, **k):
        real(self, folder, *a, **k)
        path = folder / "model.safetensors"
        tensors = load_file(str(path))
        name = next(n for n in tensors if n.endswith("mlp.down_proj.weight"))
        tensors[name] = tensors[name] * 3.0  # what a bad merge or a torn file could do
        save_file(tensors, str(path), metadata={"format": "pt"})

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", save_damaged)
    out = tmp_path / "damaged"
    assert export_main(lora_run.path, "merged", out) == 1
    verdict = _verdict(out)
    assert verdict["verdict"] == "FAILED" and not {c["name"]: c for c in verdict["checks"]}["logits"]["passed"]
    done = read_events(lora_run.exports_dir / "export.jsonl")[-1]
    assert done["status"] == "failed" and "VERIFICATION FAILED" in done["message"]


def test_a_damaged_adapter_export_fails_verification(lora_run, tmp_path, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    from studio.worker import export as export_module

    real = shutil.copy2

    def copy_damaged(src, dst, *a, **k):
        real(src, dst, *a, **k)
        if str(src).endswith("adapter_model.safetensors"):
            tensors = {n: t * 0 for n, t in load_file(str(dst)).items()}  # an adapter that lost its training
            save_file(tensors, str(dst))

    monkeypatch.setattr(export_module.shutil, "copy2", copy_damaged)
    out = tmp_path / "damaged-adapter"
    assert export_main(lora_run.path, "adapter", out) == 1
    assert _verdict(out)["passed"] is False


def test_a_freeze_tuning_adapter_reloads_as_tensors_over_the_base(tmp_path):
    run = make_run(tmp_path, _config({"name": "freeze", "trainable_layers": 1}, max_steps=2, save_steps=0))
    assert train_module.main(run.path) == 0
    out = tmp_path / "adapter"
    assert export_main(run.path, "adapter", out) == 0
    verdict = _verdict(out)
    assert verdict["passed"] and "safetensors" in verdict["criteria"], verdict
