"""The diagnostics report: every section present, and problems raised only for real problems."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import namedtuple

import pytest

from studio.core import diagnostics as d

NO_GPU = {"error": "no NVIDIA driver found (test)", "gpus": []}
ONE_GPU = {"driver": "550.54", "cuda_driver": "12.4", "gpus": [
    {"index": 0, "name": "NVIDIA RTX 4090", "mem_total": 24 * 1024**3, "mem_used": 1024**3, "compute_capability": "8.9"}]}
CPU_RUNTIME = {"torch": "2.13.0+cpu", "torch_cuda_build": None, "cuda_available": False,
               "bitsandbytes": {"installed": False}}
GPU_RUNTIME = {"torch": "2.13.0", "torch_cuda_build": "12.8", "cuda_available": True, "cuda_ok": True,
               "cuda_devices": ["NVIDIA RTX 4090"], "bf16": True,
               "bitsandbytes": {"installed": True, "version": "0.50.2", "works": True}}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path


def values(report, title):
    return {i.label: i.value for i in report.section(title).items}


def test_report_has_every_section_and_renders_as_text(tmp_path):
    report = d.collect_report(CPU_RUNTIME, nvml=NO_GPU, run_folder=tmp_path)
    assert [s.title for s in report.sections] == list(d.SECTION_TITLES)
    text = report.to_text()
    for title in d.SECTION_TITLES:
        assert f"[{title}]" in text
    assert "2.13.0+cpu" in text and "no NVIDIA driver found" in text
    assert json.loads(json.dumps(report.to_dict()))["sections"][0]["title"] == "Studio"


def test_cpu_machine_with_cpu_build_has_no_problems(tmp_path):
    report = d.collect_report(CPU_RUNTIME, nvml=NO_GPU, run_folder=tmp_path)
    assert report.problems == []
    assert "training runs on the CPU" in values(report, "Training runtime")["CUDA"]


def test_gpu_machine_with_working_gpu_build_has_no_problems(tmp_path):
    report = d.collect_report(GPU_RUNTIME, nvml=ONE_GPU, run_folder=tmp_path)
    assert report.problems == []
    gpus = values(report, "GPUs")
    assert gpus["Driver"].startswith("550.54") and "CUDA 12.4" in gpus["Driver"]
    assert "RTX 4090" in gpus["GPU 0"] and "24.0 GiB" in gpus["GPU 0"] and "8.9" in gpus["GPU 0"]
    assert "works" in values(report, "Training runtime")["bitsandbytes"]


def test_gpu_machine_with_cpu_build_says_to_install_the_gpu_build(tmp_path):
    report = d.collect_report(CPU_RUNTIME, nvml=ONE_GPU, run_folder=tmp_path)
    assert len(report.problems) == 1 and "GPU build" in report.problems[0]


def test_cuda_that_does_not_work_blames_the_driver(tmp_path):
    rt = {**GPU_RUNTIME, "cuda_available": False, "cuda_error": "RuntimeError: driver too old"}
    report = d.collect_report(rt, nvml=ONE_GPU, run_folder=tmp_path)
    assert any("driver too old" in p and "update the driver" in p for p in report.problems)
    assert "[FAILED]" in report.to_text()


def test_broken_bitsandbytes_and_broken_torch_are_problems(tmp_path):
    rt = {**GPU_RUNTIME, "bitsandbytes": {"installed": True, "works": False, "error": "no kernel image"}}
    assert any("bitsandbytes" in p for p in d.collect_report(rt, nvml=ONE_GPU, run_folder=tmp_path).problems)
    broken = d.collect_report({"torch_error": "ImportError: libtorch_cpu.so"}, nvml=NO_GPU, run_folder=tmp_path)
    assert any("PyTorch does not load" in p for p in broken.problems)


def test_not_yet_probed_runtime_is_pending_not_a_problem(tmp_path):
    report = d.collect_report(None, nvml=NO_GPU, run_folder=tmp_path)
    assert values(report, "Training runtime")["PyTorch"] == "checking…"
    assert report.problems == []


def test_low_disk_is_a_problem(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(d.shutil, "disk_usage", lambda p: usage(100 * 1024**3, 99 * 1024**3, 1024**3))
    report = d.collect_report(CPU_RUNTIME, nvml=NO_GPU, run_folder=tmp_path)
    assert any("1.0 GiB free" in p for p in report.problems)


def test_disk_facts_of_a_folder_not_created_yet_use_its_parent(tmp_path):
    facts = d.disk_facts(tmp_path / "a" / "b")
    assert facts["writable"] is True and facts["free"] > 0 and facts["path"].endswith("b")


def test_missing_demo_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "empty-bundle"), raising=False)
    report = d.collect_report(CPU_RUNTIME, nvml=NO_GPU, run_folder=tmp_path)
    assert any("demo" in p for p in report.problems)
    assert values(report, "Studio")["Demo model"].startswith("MISSING")


def test_stack_versions_come_from_metadata():
    versions = d.stack_versions()
    assert versions["studio"] and versions["torch"] and versions["transformers"] and versions["peft"]
    assert set(d.STACK_DISTRIBUTIONS) <= set(versions)


def test_app_command_from_source_and_when_frozen(monkeypatch, tmp_path):
    assert d.app_command("--worker", "train", "X") == [sys.executable, "-m", "studio", "--worker", "train", "X"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert d.probe_command() == [sys.executable, "--diagnose", "--json"]
    (tmp_path / d.BUILD_INFO_FILE).write_text(json.dumps({"flavour": "gpu", "built": "2026-11-23"}))
    assert d.build_info()["flavour"] == "gpu"


def test_build_info_from_source():
    assert d.build_info() == {"flavour": "source"}


def test_preflight_runs_once_per_version():
    assert d.preflight_due()
    d.record_preflight(d.Report([], ["x"]))
    assert not d.preflight_due()


def test_probe_runtime_on_this_machine():
    facts = d.probe_runtime()
    assert facts["torch"] and isinstance(facts["cuda_available"], bool)
    assert "installed" in facts["bitsandbytes"]


def test_importing_diagnostics_pulls_in_neither_torch_nor_qt():
    code = ("import sys, studio.core.diagnostics as d; d.collect_report(None, nvml={'error': 'x', 'gpus': []}); "
            "print(sorted(m for m in ('torch', 'PySide6', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
