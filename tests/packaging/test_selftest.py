"""`studio --self-test` and `studio --version`: the verdict format and the exit status."""

from __future__ import annotations

import io
import subprocess
import sys

from studio import selftest


def _run(monkeypatch, checks, only=None):
    monkeypatch.setattr(selftest, "CHECKS", checks)
    out = io.StringIO()
    return selftest.run_self_test(out, only=only), out.getvalue()


def test_pass_and_skip_exit_zero(monkeypatch):
    def skipped():
        raise selftest.Skip("no NVIDIA GPU")

    code, text = _run(monkeypatch, [("a", lambda: "fine"), ("b", skipped)])
    assert code == 0
    assert "PASS  a" in text and "SKIP  b" in text and "no NVIDIA GPU" in text and "all passed" in text


def test_any_failure_exits_one_and_says_why(monkeypatch):
    def broken():
        raise ImportError("libfoo.so: cannot open shared object file")

    def exits():
        raise SystemExit(3)  # a check must not end the self-test

    code, text = _run(monkeypatch, [("a", broken), ("b", exits), ("c", lambda: "fine")])
    assert code == 1
    assert "FAIL  a" in text and "libfoo.so" in text and "Traceback" in text
    assert "FAIL  b" in text and "PASS  c" in text and "FAILED (2)" in text


def test_only_runs_the_named_checks(monkeypatch):
    code, text = _run(monkeypatch, [("core imports", lambda: "x"), ("torch", lambda: 1 / 0)], only=["core"])
    assert code == 0 and "torch" not in text.split("\n", 1)[1]


def test_every_subsystem_has_a_check():
    names = " ".join(name for name, _ in selftest.CHECKS)
    for subsystem in ("core imports", "Qt", "torch", "transformers", "peft", "CUDA", "bitsandbytes", "Liger", "triton", "NVML",
                      "demo", "worker"):
        assert subsystem in names


def test_core_imports_and_demo_checks_pass_from_source():
    assert "modules" in selftest.check_core_imports()
    assert "dataset rows" in selftest.check_demo_resources()


def test_version_lists_the_stack():
    out = subprocess.run([sys.executable, "-m", "studio", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("studio ")
    for name in ("torch", "transformers", "peft", "datasets", "accelerate", "PySide6-Essentials", "python"):
        assert any(line.split()[0] == name for line in lines[1:]), name


def test_cuda_build_without_a_gpu_is_a_skip_that_names_the_build(monkeypatch):
    """The gpu flavour on a machine with no NVIDIA GPU: not a failure, and it says which torch is there."""
    import torch

    from studio.core import diagnostics

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(diagnostics, "nvml_facts", lambda: {"gpus": []})
    code, text = _run(monkeypatch, [("CUDA", selftest.check_cuda)])
    assert code == 0
    assert "SKIP  CUDA" in text and "CUDA 13.0 build of torch" in text and "no NVIDIA GPU visible" in text


def test_gpu_only_packages_absent_from_the_cpu_flavour_skip(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("bitsandbytes", "liger_kernel", "triton") else real(name, *a))
    code, text = _run(monkeypatch, [("bitsandbytes", selftest.check_bitsandbytes),
                                    ("Liger kernels", selftest.check_liger),
                                    ("triton launcher build", selftest.check_triton_launcher)])
    assert code == 0 and text.count("not in this build") == 3
