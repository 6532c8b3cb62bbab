"""`studio --self-test`: pass/fail per subsystem of this installation, for installers and bug reports.

Each check is a small function that raises ``Skip`` when it does not apply to this machine (no
NVIDIA GPU, CPU build) and any other exception when it fails. The last check trains the demo for
two steps in a worker started through the app's own executable and exports the adapter, which is
the launch path a frozen build most often breaks. The exit status is 1 if any check failed.

It lives beside app.py (not in core) because it touches every layer: Qt, torch and the worker.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional, TextIO

WORKER_TIMEOUT_S = 600  # two CPU steps of the demo take seconds; a cold frozen start can take a minute


class Skip(Exception):
    """The check does not apply here; the message says why."""


def check_core_imports() -> str:
    import studio.cli
    import studio.core

    torch_before = "torch" in sys.modules
    names = []
    for pkg in (studio.core, studio.cli):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(mod.name)
            names.append(mod.name)
    if "torch" in sys.modules and not torch_before:
        raise RuntimeError("importing studio.core pulled in torch (the GUI would start slowly)")
    return f"{len(names)} modules"


def check_qt_window() -> str:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the check must not depend on a display
    from PySide6 import QtCore
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["studio-self-test"])
    window = _main_window()
    window.show()
    for _ in range(5):
        app.processEvents()
    shown = window.isVisible()
    title = window.windowTitle() or type(window).__name__
    window.close()
    window.deleteLater()
    app.processEvents()
    if not shown:
        raise RuntimeError("the window did not become visible")
    native = _native_platform_plugin(Path(QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath)))
    return f"{title!r} on {app.platformName()}; native plugin {native}"


def _main_window():
    """The studio's real main window with its theme, so missing UI modules or icons fail here."""
    from PySide6.QtWidgets import QApplication

    from studio.ui.main_window import MainWindow
    from studio.ui.theme import apply_theme

    apply_theme(QApplication.instance())
    window = MainWindow()
    window.build_remaining_pages()
    return window


def _native_platform_plugin(plugins: Path) -> str:
    """The plugin the real desktop needs (the offscreen one proves little about it)."""
    wanted = {"linux": "libqxcb", "darwin": "libqcocoa", "win32": "qwindows"}.get(sys.platform)
    if not wanted:
        return "n/a"
    found = sorted(p.name for p in (plugins / "platforms").glob(wanted + "*"))
    if not found:
        raise RuntimeError(f"the {wanted} platform plugin is missing from {plugins / 'platforms'}")
    if sys.platform == "linux":  # the desktop's window needs system X11 libraries the offscreen test does not
        from studio.core import display_libs

        plugin = plugins / "platforms" / found[0]
        missing = display_libs.missing_libraries(plugin)
        if missing:
            raise RuntimeError(display_libs.describe_missing(missing, plugin))
    return found[0]


def check_torch() -> str:
    import torch

    w = torch.randn(4, 4, requires_grad=True)
    (w @ torch.ones(4, 1)).sum().backward()
    if w.grad is None:
        raise RuntimeError("autograd produced no gradient")
    return f"{torch.__version__}, autograd ok, {torch.get_num_threads()} threads"


def check_transformers() -> str:
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # keep the report one line per check

    from studio.core.paths import demo_model_dir

    path = demo_model_dir()
    if not (path / "config.json").is_file():
        raise RuntimeError(f"demo model missing at {path}")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = tok("hello", return_tensors="pt").input_ids
    out = model(input_ids=ids)
    return f"{transformers.__version__}, demo {type(model).__name__} forward {tuple(out.logits.shape)}"


def check_model_families() -> str:
    """Every architecture of the model catalog resolves: the bundle holds their modeling code."""
    import json

    import transformers

    from studio.core.paths import resources_dir

    files = sorted((resources_dir() / "catalog").glob("*.json"))
    if not files:
        raise Skip("no model catalog in this build")
    archs = sorted({a for f in files for a in json.loads(f.read_text(encoding="utf-8")).get("architectures", [])[:1]})
    missing = [a for a in archs if not _resolves(transformers, a)]
    if missing:
        raise RuntimeError(f"transformers cannot load {', '.join(missing)}")
    return f"{len(archs)} architectures: {', '.join(archs)}"


def _resolves(module, name: str) -> bool:
    try:
        return getattr(module, name) is not None
    except (AttributeError, ImportError):
        return False


def check_peft() -> str:
    import peft
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.core.paths import demo_model_dir

    model = AutoModelForCausalLM.from_pretrained(demo_model_dir())
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable, total = model.get_nb_trainable_parameters()
    if not trainable:
        raise RuntimeError("LoRA added no trainable parameters")
    return f"{peft.__version__}, LoRA on the demo: {trainable:,} of {total:,} parameters trainable"


def check_cuda() -> str:
    import torch

    from studio.core.diagnostics import nvml_facts

    gpus = nvml_facts().get("gpus")
    if not torch.version.cuda:
        raise Skip("CPU build" + (" (this machine has an NVIDIA GPU: install the GPU build)" if gpus else ""))
    if not gpus:  # the gpu build on a machine without one: it still trains, on the CPU
        raise Skip(f"CUDA {torch.version.cuda} build of torch {torch.__version__} present; no NVIDIA GPU visible, "
                   "so training runs on the CPU")
    if not torch.cuda.is_available():
        raise RuntimeError(f"torch cannot use the GPU (CUDA {torch.version.cuda}); the driver may be too old")
    x = torch.randn(256, 256, device="cuda")
    torch.cuda.synchronize()
    return f"CUDA {torch.version.cuda} on {torch.cuda.get_device_name(0)}, matmul sum {float((x @ x).sum()):.1f}"


def check_bitsandbytes() -> str:
    import importlib.util

    import torch

    if importlib.util.find_spec("bitsandbytes") is None:
        raise Skip("not in this build (CPU flavour)")
    if not torch.cuda.is_available():
        import bitsandbytes  # a missing kernel library or module here is a packaging bug, so it fails

        raise Skip(f"{bitsandbytes.__version__} imports; 4-bit quantization needs a CUDA GPU")
    from studio.core.diagnostics import _probe_bitsandbytes

    result = _probe_bitsandbytes(True)
    if not result.get("works"):
        raise RuntimeError(result.get("error", "4-bit quantization failed"))
    return f"{result['version']}, 4-bit quantization ok"


def check_liger() -> str:
    import importlib.util

    import torch

    if importlib.util.find_spec("liger_kernel") is None:
        raise Skip("not in this build (CPU flavour: the kernels are Triton, CUDA only)")
    from importlib.metadata import version

    import liger_kernel.transformers  # noqa: F401 - what studio.worker.kernels imports
    import triton

    what = f"liger-kernel {version('liger-kernel')} and triton {triton.__version__} import"
    if not torch.cuda.is_available():
        raise Skip(f"{what}; their kernels run only on a CUDA GPU")
    return what


_LAUNCHER_PROBE = """#include <cuda.h>
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static PyObject *api(PyObject *self, PyObject *args) { return PyLong_FromLong(CUDA_VERSION); }
static PyMethodDef methods[] = {{"api", api, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "studio_triton_probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_studio_triton_probe(void) { return PyModule_Create(&mod); }
"""


def check_triton_launcher() -> str:
    """Triton compiles a small C launcher (with cuda.h and Python.h) before its first kernel runs.

    The same build as triton's, on a probe module, so it is checked on a machine without a GPU too.
    """
    import importlib.util
    import shutil

    if importlib.util.find_spec("triton") is None:
        raise Skip("not in this build (CPU flavour)")
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise Skip("no C compiler (gcc): on a GPU, Liger and compiled layers fall back to the plain PyTorch "
                   "kernels; install gcc to use them")
    import triton
    from triton.runtime.build import compile_module_from_src

    include = Path(triton.__file__).parent / "backends" / "nvidia" / "include"
    module = compile_module_from_src(_LAUNCHER_PROBE, "studio_triton_probe", include_dirs=[str(include)])
    return f"{Path(cc).name} built a launcher module against Python.h and cuda.h (CUDA API {module.api()})"


def check_nvml() -> str:
    import pynvml  # noqa: F401 - a missing module here is a packaging bug, not a machine fact

    from studio.core.diagnostics import nvml_facts

    facts = nvml_facts()
    if facts.get("error"):
        raise Skip(facts["error"])
    return f"driver {facts['driver']}, {len(facts['gpus'])} GPU(s)"


def check_demo_resources() -> str:
    import json

    from studio.core.diagnostics import demo_facts

    facts = demo_facts()
    if not facts["model"]:
        raise RuntimeError(f"demo model missing or incomplete at {facts['model_dir']}")
    if not facts["dataset"]:
        raise RuntimeError(f"demo dataset missing at {facts['dataset_path']}")
    lines = Path(facts["dataset_path"]).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return f"model + {len(rows)} dataset rows"


def check_worker() -> str:
    """Train the demo for 2 steps and export its adapter, each in a worker started like the GUI does."""
    from studio.core.config import RunConfig
    from studio.core.diagnostics import app_command
    from studio.core.runs import RunStore

    with tempfile.TemporaryDirectory(prefix="studio-self-test-") as tmp:
        config = RunConfig(name="self-test").replace("training.max_steps", 2).replace("training.batch_size", 2)
        config = config.replace("training.device", "cpu") if not _cuda_usable() else config
        run = RunStore(Path(tmp) / "runs").create(config)
        env = {**os.environ, "STUDIO_HOME": tmp, "HF_HUB_OFFLINE": "1", "QT_QPA_PLATFORM": "offscreen"}
        t0 = time.monotonic()
        _run_worker(app_command("--worker", "train", str(run.path)), env, run.path, "train")
        status = run.status()
        if status.get("state") != "completed":
            raise RuntimeError(f"training ended {status.get('state')!r}: {status.get('message', '')}\n{run.log_tail(15)}")
        steps = [e for e in run.events() if e.get("type") == "step"]
        out = Path(tmp) / "export"
        _run_worker(app_command("--worker", "export", str(run.path), "--kind", "adapter", "--out", str(out)),
                    env, run.path, "export")
        files = {p.name for p in out.rglob("*") if p.is_file()}
        if "adapter_config.json" not in files or not any(f.startswith("adapter_model") for f in files):
            raise RuntimeError(f"export wrote no adapter to {out} (found: {sorted(files) or 'nothing'})")
        loss = steps[-1].get("loss") if steps else None
        return (f"{len(steps)} steps (last loss {loss:.3f}), adapter exported, {time.monotonic() - t0:.0f} s"
                if isinstance(loss, (int, float)) else f"{len(steps)} steps, adapter exported")


def _cuda_usable() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def _run_worker(cmd: list[str], env: dict[str, str], run_dir: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the {what} worker did not finish in {WORKER_TIMEOUT_S} s") from None
    log = _read(run_dir / "worker.log") + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"the {what} worker exited with {proc.returncode}: {' '.join(cmd)}\n{_tail(log, 20)}")
    if "Traceback (most recent call last)" in log:
        raise RuntimeError(f"the {what} worker logged a traceback:\n{_tail(log, 20)}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _tail(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("core imports", check_core_imports),
    ("Qt window (offscreen)", check_qt_window),
    ("torch", check_torch),
    ("transformers", check_transformers),
    ("transformers model families", check_model_families),
    ("peft", check_peft),
    ("CUDA", check_cuda),
    ("bitsandbytes", check_bitsandbytes),
    ("Liger kernels", check_liger),
    ("triton launcher build", check_triton_launcher),
    ("NVML", check_nvml),
    ("demo resources", check_demo_resources),
    ("worker: train 2 steps + export", check_worker),
]


def run_self_test(out: TextIO = sys.stdout, only: Optional[list[str]] = None) -> int:
    """Run every check (or those whose names start with one of ``only``); 1 if any failed."""
    import warnings

    from studio import __version__

    warnings.simplefilter("ignore", FutureWarning)  # library deprecation notes are not test results

    print(f"studio {__version__} self-test ({sys.executable})", file=out, flush=True)
    failed = 0
    for name, check in CHECKS:
        if only and not any(name.startswith(o) for o in only):
            continue
        t0 = time.monotonic()
        try:
            verdict, detail = "PASS", check()
        except Skip as e:
            verdict, detail = "SKIP", str(e)
        except BaseException as e:  # a check must never end the self-test, not even SystemExit
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            verdict, detail = "FAIL", f"{type(e).__name__}: {e}"
            if not isinstance(e, RuntimeError):  # our own RuntimeErrors already say what went wrong
                detail += "\n" + _indent(traceback.format_exc())
        print(f"{verdict}  {name:<32} {detail}  ({time.monotonic() - t0:.1f} s)", file=out, flush=True)
    print(f"self-test: {'FAILED (' + str(failed) + ')' if failed else 'all passed'}", file=out, flush=True)
    return 1 if failed else 0


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.rstrip().splitlines())
