"""What this installation is and whether it can train: the report behind Help → Diagnostics.

``collect_report()`` gathers the facts that need no torch (OS, app build, NVIDIA driver and GPUs
from NVML, free disk in the run folder, versions of the stack from package metadata) and takes
the torch-side facts (does CUDA work in this build, does bitsandbytes work) as a dict produced by
``probe_runtime()``. The GUI never imports torch, so it runs the probe in a child process
(``probe_command()``, i.e. ``studio --diagnose --json``) and hands the result in.

``Report.problems`` lists only real problems (a GPU the build cannot use, a nearly full disk,
missing demo files): the first-launch pre-flight shows them and stays silent otherwise.
``Report.to_text()`` is what the Copy button puts on the clipboard for a bug report.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Optional

from studio import __version__

Status = Literal["ok", "warn", "fail", "info"]

# Distribution names whose versions identify the stack, in the order a bug report wants them.
STACK_DISTRIBUTIONS = (
    "torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors",
    "huggingface_hub", "bitsandbytes", "PySide6-Essentials", "shiboken6", "pyqtgraph",
    "nvidia-ml-py", "numpy", "pydantic", "PyYAML", "platformdirs", "psutil",
)
SECTION_TITLES = ("Studio", "System", "GPUs", "Training runtime", "Storage", "Versions")
LOW_DISK_BYTES = 10 * 1024**3  # below this a run folder cannot hold even a 7B merged export
BUILD_INFO_FILE = "studio_build.json"  # written by packaging/build.sh into the frozen bundle


@dataclass
class Item:
    label: str
    value: str
    status: Status = "info"


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)

    def add(self, label: str, value: Any, status: Status = "info") -> None:
        self.items.append(Item(label, str(value), status))


@dataclass
class Report:
    sections: list[Section]
    problems: list[str] = field(default_factory=list)  # real problems, each with what to do

    def section(self, title: str) -> Section:
        for s in self.sections:
            if s.title == title:
                return s
        raise KeyError(title)

    def to_dict(self) -> dict[str, Any]:
        return {"sections": [asdict(s) for s in self.sections], "problems": list(self.problems)}

    def to_text(self) -> str:
        """Plain text for a bug report: one ``label: value`` line per fact, problems first."""
        lines = [f"Studio diagnostics ({__version__})"]
        if self.problems:
            lines += ["", "Problems:"] + [f"  ! {p}" for p in self.problems]
        marks = {"ok": "", "warn": "  [warning]", "fail": "  [FAILED]", "info": ""}
        for s in self.sections:
            lines += ["", f"[{s.title}]"]
            width = max((len(i.label) for i in s.items), default=0)
            lines += [f"  {i.label.ljust(width)}  {i.value}{marks[i.status]}" for i in s.items]
        return "\n".join(lines) + "\n"


# ---- facts that need no torch ------------------------------------------------------------------

def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def build_info() -> dict[str, Any]:
    """The flavour and build time the packager recorded; {"flavour": "source"} when not frozen."""
    root = getattr(sys, "_MEIPASS", None)
    if root:
        try:
            return json.loads((Path(root) / BUILD_INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"flavour": "unknown"}
    return {"flavour": "source"}


def app_command(*args: str) -> list[str]:
    """How to start this studio again with ``args``: the app itself when frozen, else python -m."""
    if is_frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "studio", *args]


def probe_command() -> list[str]:
    """The child process that prints ``probe_runtime()`` as JSON (see studio.__main__)."""
    return app_command("--diagnose", "--json")


def stack_versions() -> dict[str, Optional[str]]:
    """Installed versions from package metadata (no imports; None = not installed)."""
    versions: dict[str, Optional[str]] = {"studio": __version__, "python": platform.python_version()}
    for dist in STACK_DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def nvml_facts() -> dict[str, Any]:
    """Driver and GPUs as NVML reports them; ``error`` says why there are none."""
    try:
        import pynvml
    except ImportError as e:
        return {"error": f"nvidia-ml-py is missing from this build ({e})", "gpus": []}
    try:
        pynvml.nvmlInit()
    except Exception as e:  # no driver / no GPU: the normal state of a CPU-only machine
        return {"error": f"no NVIDIA driver found ({e or type(e).__name__})", "gpus": []}
    try:
        facts: dict[str, Any] = {"driver": _text(pynvml.nvmlSystemGetDriverVersion()), "gpus": []}
        cuda = _opt(pynvml.nvmlSystemGetCudaDriverVersion_v2)
        if cuda:
            facts["cuda_driver"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            cc = _opt(lambda: pynvml.nvmlDeviceGetCudaComputeCapability(h))
            facts["gpus"].append({"index": i, "name": _text(pynvml.nvmlDeviceGetName(h)),
                                  "mem_total": int(mem.total), "mem_used": int(mem.used),
                                  "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None})
        return facts
    except Exception as e:
        return {"error": f"NVML failed while reading the GPUs ({e})", "gpus": []}
    finally:
        _opt(pynvml.nvmlShutdown)


def disk_facts(folder: Path) -> dict[str, Any]:
    """Free space and writability of the run folder (the nearest existing parent if absent)."""
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    facts: dict[str, Any] = {"path": str(folder)}
    try:
        usage = shutil.disk_usage(probe)
        facts.update(free=usage.free, total=usage.total)
    except OSError as e:
        facts["error"] = str(e)
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".studio-write-test-"):
            facts["writable"] = True
    except OSError as e:
        facts["writable"] = False
        facts["write_error"] = e.strerror or str(e)
    return facts


def demo_facts() -> dict[str, Any]:
    """Whether the embedded demo model and dataset shipped with this build."""
    from studio.core.paths import demo_dataset_path, demo_model_dir

    model = demo_model_dir()
    has_weights = any(model.glob("*.safetensors")) or any(model.glob("*.bin")) if model.is_dir() else False
    return {"model_dir": str(model), "model": model.is_dir() and (model / "config.json").is_file() and has_weights,
            "dataset_path": str(demo_dataset_path()), "dataset": demo_dataset_path().is_file()}


# ---- facts that need torch (run in a child process by the GUI) ---------------------------------

def probe_runtime() -> dict[str, Any]:
    """Import torch (and bitsandbytes where present) and try them for real. Never raises."""
    facts: dict[str, Any] = {}
    try:
        import torch
    except Exception as e:
        return {"torch_error": f"{type(e).__name__}: {e}"}
    facts["torch"] = torch.__version__
    facts["torch_cuda_build"] = torch.version.cuda  # None in a CPU-only build
    facts["cuda_available"] = False
    try:
        if torch.cuda.is_available():
            x = torch.ones(8, device="cuda")
            facts["cuda_ok"] = float((x * 2).sum().item()) == 16.0
            facts["cuda_available"] = True
            facts["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            facts["bf16"] = bool(torch.cuda.is_bf16_supported())
    except Exception as e:
        facts["cuda_error"] = f"{type(e).__name__}: {e}"
    facts["bitsandbytes"] = _probe_bitsandbytes(facts["cuda_available"])
    return facts


def _probe_bitsandbytes(cuda: bool) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        return {"installed": False}
    if not cuda:
        # importing it without CUDA only logs warnings; its kernels cannot run anyway
        return {"installed": True, "works": None, "detail": "needs a CUDA GPU"}
    try:
        import bitsandbytes
        import bitsandbytes.functional as bnbf
        import torch

        q, state = bnbf.quantize_4bit(torch.randn(64, 64, device="cuda", dtype=torch.float16), quant_type="nf4")
        back = bnbf.dequantize_4bit(q, state)
        return {"installed": True, "version": bitsandbytes.__version__, "works": bool(back.shape == (64, 64))}
    except Exception as e:
        return {"installed": True, "works": False, "error": f"{type(e).__name__}: {e}"}


# ---- the report ---------------------------------------------------------------------------------

def collect_report(runtime: Optional[dict[str, Any]] = None, *, run_folder: Optional[Path] = None,
                   nvml: Optional[dict[str, Any]] = None) -> Report:
    """Assemble every section. ``runtime`` is ``probe_runtime()``'s dict (None = not probed yet)."""
    from studio.core.paths import runs_root

    nvml = nvml_facts() if nvml is None else nvml
    disk = disk_facts(run_folder or runs_root())
    demo = demo_facts()
    info = build_info()
    problems: list[str] = []
    sections = [_studio_section(info, demo, problems), _system_section(), _gpu_section(nvml),
                _runtime_section(runtime, nvml, info, problems), _storage_section(disk, problems),
                _versions_section(stack_versions())]
    return Report(sections, problems)


def _studio_section(info: dict[str, Any], demo: dict[str, Any], problems: list[str]) -> Section:
    s = Section("Studio")
    s.add("Version", __version__)
    s.add("Build", info.get("flavour", "unknown") + (f", built {info['built']}" if info.get("built") else ""))
    s.add("Executable", sys.executable)
    s.add("Installed in", getattr(sys, "_MEIPASS", None) or str(Path(__file__).resolve().parents[2]))
    for key, label in (("model", "Demo model"), ("dataset", "Demo dataset")):
        path = demo[f"{key}_dir" if key == "model" else f"{key}_path"]
        s.add(label, ("present: " if demo[key] else "MISSING: ") + path, "ok" if demo[key] else "fail")
    if not (demo["model"] and demo["dataset"]):
        problems.append("The demo model or dataset is missing from this installation, so the one-click demo "
                        "cannot run. Reinstall the studio.")
    return s


def _system_section() -> Section:
    s = Section("System")
    s.add("OS", _os_name())
    s.add("Machine", f"{platform.machine()}, {os.cpu_count() or '?'} logical CPUs")
    try:
        import psutil

        s.add("Memory", f"{_gib(psutil.virtual_memory().total)} total, {_gib(psutil.virtual_memory().available)} available")
    except Exception:
        pass
    s.add("Python", f"{platform.python_version()} ({platform.python_implementation()})")
    return s


def _gpu_section(nvml: dict[str, Any]) -> Section:
    s = Section("GPUs")
    if nvml.get("error"):
        s.add("NVIDIA", nvml["error"])
        return s
    s.add("Driver", nvml.get("driver", "?") + (f" (supports CUDA {nvml['cuda_driver']})" if nvml.get("cuda_driver") else ""), "ok")
    for g in nvml["gpus"]:
        cc = f", compute {g['compute_capability']}" if g.get("compute_capability") else ""
        s.add(f"GPU {g['index']}", f"{g['name']}, {_gib(g['mem_total'])} ({_gib(g['mem_used'])} in use){cc}")
    if not nvml["gpus"]:
        s.add("GPUs", "the driver reports none")
    return s


def _runtime_section(rt: Optional[dict[str, Any]], nvml: dict[str, Any], info: dict[str, Any],
                     problems: list[str]) -> Section:
    s = Section("Training runtime")
    if rt is None:
        s.add("PyTorch", "checking…")
        return s
    if rt.get("torch_error"):
        s.add("PyTorch", f"does not load: {rt['torch_error']}", "fail")
        problems.append(f"PyTorch does not load in this build ({rt['torch_error']}). Reinstall the studio.")
        return s
    s.add("PyTorch", f"{rt['torch']} ({'CUDA ' + rt['torch_cuda_build'] if rt.get('torch_cuda_build') else 'CPU-only build'})", "ok")
    has_gpu = bool(nvml.get("gpus"))
    if rt.get("cuda_available") and rt.get("cuda_ok", True):
        bf16 = ", bf16" if rt.get("bf16") else ", no bf16 (fp16 is used)"
        s.add("CUDA", f"works on {', '.join(rt.get('cuda_devices', []))}{bf16}", "ok")
    elif has_gpu and not rt.get("torch_cuda_build"):
        s.add("CUDA", "not in this build (CPU flavour)", "warn")
        problems.append("This machine has an NVIDIA GPU but this is the CPU build of the studio, so training "
                        "runs on the CPU. Install the GPU build to train on the GPU.")
    elif has_gpu:
        why = rt.get("cuda_error") or "torch.cuda.is_available() is False"
        s.add("CUDA", f"does not work: {why}", "fail")
        problems.append(f"The NVIDIA GPU cannot be used ({why}). The installed driver "
                        f"{nvml.get('driver', '?')} may be too old for CUDA {rt.get('torch_cuda_build')}: update the driver.")
    else:
        s.add("CUDA", "no NVIDIA GPU: training runs on the CPU")
    bnb = rt.get("bitsandbytes") or {}
    if not bnb.get("installed"):
        s.add("bitsandbytes", "not in this build (QLoRA and 8-bit optimizers need the GPU build)")
    elif bnb.get("works") is None:
        s.add("bitsandbytes", f"installed; {bnb.get('detail', 'not tried')}")
    elif bnb.get("works"):
        s.add("bitsandbytes", f"{bnb.get('version', '')} works (4-bit quantization tried)".strip(), "ok")
    else:
        s.add("bitsandbytes", f"fails: {bnb.get('error', '?')}", "fail")
        problems.append(f"bitsandbytes does not work on this GPU ({bnb.get('error', '?')}): QLoRA and 8-bit "
                        "optimizers are unavailable; LoRA still works.")
    return s


def _storage_section(disk: dict[str, Any], problems: list[str]) -> Section:
    s = Section("Storage")
    s.add("Run folder", disk["path"])
    if "free" in disk:
        low = disk["free"] < LOW_DISK_BYTES
        s.add("Free", f"{_gib(disk['free'])} of {_gib(disk['total'])}", "warn" if low else "ok")
        if low:
            problems.append(f"Only {_gib(disk['free'])} free in the run folder ({disk['path']}): checkpoints and "
                            "merged exports may not fit. Free some space or choose another output folder.")
    else:
        s.add("Free", f"unknown ({disk.get('error', '?')})", "warn")
    if disk.get("writable") is False:
        s.add("Writable", f"no ({disk.get('write_error', '')})", "fail")
        problems.append(f"The run folder {disk['path']} is not writable: choose another output folder.")
    else:
        s.add("Writable", "yes", "ok")
    return s


def _versions_section(versions: dict[str, Optional[str]]) -> Section:
    s = Section("Versions")
    for name, version in versions.items():
        s.add(name, version or "not installed")
    return s


# ---- helpers -----------------------------------------------------------------------------------

def _os_name() -> str:
    system = platform.system()
    if system == "Linux":
        try:
            pretty = platform.freedesktop_os_release().get("PRETTY_NAME")
        except OSError:
            pretty = None
        return f"{pretty or 'Linux'} (kernel {platform.release()})"
    if system == "Darwin":
        return f"macOS {platform.mac_ver()[0]}"
    if system == "Windows":
        return f"Windows {platform.version()}"
    return platform.platform()


def _gib(n: Optional[int]) -> str:
    return "?" if n is None else f"{n / 1024**3:.1f} GiB"


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _opt(read):
    try:
        return read()
    except Exception:
        return None


# ---- first-launch pre-flight -------------------------------------------------------------------

PREFLIGHT_FILE = "preflight.json"


def preflight_due() -> bool:
    """True until a pre-flight has run for this version of the studio (a new install re-checks)."""
    from studio.core.paths import studio_home

    try:
        done = json.loads((studio_home() / PREFLIGHT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return done.get("version") != __version__


def record_preflight(report: Report) -> None:
    """Remember that the pre-flight ran (and what it found) so it does not run again."""
    import time

    from studio.core.paths import studio_home

    (studio_home() / PREFLIGHT_FILE).write_text(
        json.dumps({"version": __version__, "time": time.time(), "problems": report.problems}, indent=1),
        encoding="utf-8")
