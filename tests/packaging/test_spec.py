"""The packaging definitions, checked without building: spec, bundle rules, scripts, desktop entry."""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "packaging"
sys.path.insert(0, str(PKG))
import bundle_rules  # noqa: E402


def test_spec_is_valid_python_and_uses_the_rules_and_entry():
    source = (PKG / "studio.spec").read_text()
    ast.parse(source)
    assert "entry.py" in source and "bundle_rules" in source and "hookspath" in source
    assert (PKG / "entry.py").is_file() and (PKG / "hooks" / "hook-peft.py").is_file()
    for hook in (PKG / "hooks").glob("*.py"):
        ast.parse(hook.read_text())


def test_entry_calls_freeze_support_before_the_studio():
    source = (PKG / "entry.py").read_text()
    assert source.index("freeze_support()") < source.index("from studio.__main__ import main")


def _qt_modules_the_studio_imports() -> set[str]:
    found = set()
    for path in (ROOT / "studio").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "PySide6":
                    found |= {f"PySide6.{a.name}" for a in node.names}
                elif node.module.startswith("PySide6."):
                    found.add(".".join(node.module.split(".")[:2]))
            elif isinstance(node, ast.Import):
                found |= {".".join(a.name.split(".")[:2]) for a in node.names if a.name.startswith("PySide6.")}
    return found


def test_no_excluded_module_is_imported_by_the_studio():
    used = _qt_modules_the_studio_imports() | {"PySide6.QtOpenGL", "PySide6.QtSvg"}  # pyqtgraph, icons
    assert not used & set(bundle_rules.EXCLUDES)
    for top in ("torch", "transformers", "peft", "datasets", "accelerate", "studio", "PySide6", "pyqtgraph", "pynvml"):
        assert top not in bundle_rules.EXCLUDES


@pytest.mark.parametrize("path", [
    "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/_C.cpython-311-x86_64-linux-gnu.so",
    "torch/nn/modules/linear.py", "torch/bin/torch_shm_manager", "torch/testing/_comparison.py", "transformers/models/llama/modeling_llama.py",
    "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "PySide6/Qt/plugins/imageformats/libqsvg.so", "PySide6/Qt/lib/libQt6Widgets.so.6",
    "PySide6/Qt/lib/libQt6Svg.so.6", "PySide6/Qt/lib/libQt6OpenGL.so.6", "PySide6/Qt/lib/libQt6XcbQpa.so.6",
    "pyarrow/libarrow.so.2600", "pyarrow/libparquet.so.2600", "pyarrow/libarrow_substrait.so.2600",
    "pyarrow/libarrow_python.so.2600",
    "resources/demo/model/model.safetensors", "resources/demo/dataset.jsonl", "studio_build.json",
    # gpu flavour: what libtorch_cuda links or dlopens, Triton's compiler parts, Liger's sources
    "nvidia/cu13/lib/libcublasLt.so.13", "nvidia/cu13/lib/libcudart.so.13", "nvidia/cu13/lib/libnvrtc.so.13",
    "nvidia/cu13/lib/libnvrtc-builtins.so.13.0", "nvidia/cu13/lib/libnvJitLink.so.13", "nvidia/cu13/lib/libcusolver.so.12",
    "nvidia/cu13/lib/libcupti.so.13", "nvidia/cu13/lib/libcufile.so.0", "nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9",
    "nvidia/nccl/lib/libnccl.so.2", "nvidia/cusparselt/lib/libcusparseLt.so.0", "nvidia/nvshmem/lib/libnvshmem_host.so.3",
    "triton/_C/libtriton.so", "triton/backends/nvidia/bin/ptxas", "triton/backends/nvidia/bin/ptxas-blackwell",
    "triton/backends/nvidia/lib/libdevice.10.bc", "triton/backends/nvidia/include/cuda.h",
    "triton/backends/nvidia/driver.c", "triton/language/core.py", "include/python3.11/Python.h",
    "include/python3.11/cpython/object.h",
    "bitsandbytes/libbitsandbytes_cuda130.so", "bitsandbytes/libbitsandbytes_cpu.so", "liger_kernel/ops/rms_norm.py",
])
def test_bundle_keeps_what_the_studio_needs(path):
    assert not bundle_rules.dropped(path)


@pytest.mark.parametrize("path", [
    "torch/test/test_api", "torch/include/ATen/ATen.h", "torch/share/cmake/Torch/TorchConfig.cmake",
    "torch/bin/protoc", "torch/lib/libtorchbind_test.so", "pyarrow/include/arrow/api.h",
    "pyarrow/libarrow_flight.so.2600", "pyarrow/libarrow_s3.so.2600", "pyarrow/lib.pyx",
    "pandas/tests/frame/test_api.py", "torch/bin/test_jit", "torch/bin/protoc",
    "PySide6/Qt/translations/qtbase_de.qm", "PySide6/Qt/lib/libQt6Quick.so.6", "PySide6/Qt/lib/libQt6Qml.so.6",
    "PySide6/Qt/plugins/sqldrivers/libqsqlite.so", "PySide6/designer",
    "nvidia/cu13/include/cuda.h", "nvidia/cu13/lib/libcudart_static.a", "nvidia/cu13/lib/libcusolverMg.so.12",
    "nvidia/cu13/lib/libnvrtc.alt.so.13", "nvidia/cu13/lib/libnvperf_host.so", "nvidia/cu13/lib/libnvblas.so.13",
    "triton/backends/nvidia/bin/nvdisasm", "triton/backends/nvidia/lib/cupti/libcupti.so",
    "bitsandbytes/libbitsandbytes_cuda118.so", "bitsandbytes/libbitsandbytes_rocm72.so",
    "bitsandbytes/libbitsandbytes_xpu2026.so",
])
def test_bundle_drops_tests_headers_and_unused_qt(path):
    assert bundle_rules.dropped(path)


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>;\[ ]", line)[0].lower().replace("_", "-"))
    return names


def test_requirements_pin_every_runtime_dependency_of_the_project():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.split(r"[=<>;\[ ]", d)[0].lower().replace("_", "-") for d in deps}
    common = _requirement_names(PKG / "requirements-common.txt")
    cpu = common | _requirement_names(PKG / "requirements-cpu.txt")
    gpu = common | _requirement_names(PKG / "requirements-gpu.txt")
    assert wanted - {"bitsandbytes"} <= cpu, wanted - cpu
    assert wanted <= gpu, wanted - gpu
    for line in (PKG / "requirements-common.txt").read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            assert "==" in line, f"not pinned: {line}"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_flavours_pin_their_torch_and_the_gpu_one_ships_its_cuda_extras():
    cpu, gpu = _pins(PKG / "requirements-cpu.txt"), _pins(PKG / "requirements-gpu.txt")
    assert cpu["torch"].startswith("2.13.0")  # the CPU wheel
    assert gpu["torch"] == "2.14.1"  # the CUDA wheel
    assert "bitsandbytes" in gpu and "liger-kernel" in gpu
    assert "bitsandbytes" not in cpu and "liger-kernel" not in cpu


def test_desktop_entry_is_valid():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(PKG / "linux" / "studio.desktop")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] and entry["Icon"] == "studio"
    assert entry["Exec"].split()[0] == "studio" and entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";") and "Development" in entry["Categories"]
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(PKG / "linux" / "studio.desktop")], check=True)


@pytest.mark.parametrize("script", ["build.sh", "smoke_test.sh", "linux/studio-wrapper.sh", "linux/postinst",
                                    "linux/postrm", "linux/install-desktop-entry.sh"])
def test_scripts_are_executable_and_parse(script):
    path = PKG / script
    assert os.access(path, os.X_OK)
    shell = "bash" if path.read_text().startswith("#!/usr/bin/env bash") else "sh"
    subprocess.run([shell, "-n", str(path)], check=True)


def test_build_script_explains_its_usage():
    out = subprocess.run([str(PKG / "build.sh")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage: packaging/build.sh cpu|gpu" in out.stderr


def test_deb_control_template_gets_every_placeholder_filled():
    placeholders = set(re.findall(r"@[A-Z_]+@", (PKG / "linux" / "control.in").read_text()))
    filled = set(re.findall(r"s/(@[A-Z_]+@)/", (PKG / "build.sh").read_text()))
    assert placeholders and placeholders <= filled
    assert "/opt/studio" in (PKG / "linux" / "studio-wrapper.sh").read_text()


def test_installer_definitions_for_other_platforms_exist():
    assert (PKG / "windows" / "studio.iss").is_file()
    assert (PKG / "macos" / "build_dmg.sh").is_file()
