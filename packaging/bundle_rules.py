"""What the frozen studio leaves out: the rules packaging/studio.spec applies, kept importable for tests.

EXCLUDES are modules PyInstaller must not follow (unused Qt modules, other frameworks, test
suites); DROP are files removed after analysis (torch's C++ tests and headers, pyarrow's
Flight/S3, Qt translations and tools); METADATA are the distributions whose metadata the
libraries query at run time. ``dropped(path)`` says whether a bundle path is removed.
"""

import os
import re

# Package metadata: transformers/peft/accelerate check versions through importlib.metadata at
# import, and `studio --version` reads it.
METADATA = ["torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors",
            "huggingface_hub", "PySide6_Essentials", "shiboken6", "pyqtgraph", "nvidia-ml-py", "numpy",
            "pydantic", "pydantic_core", "PyYAML", "platformdirs", "psutil", "filelock", "fsspec", "packaging",
            "tqdm", "regex", "requests", "pyarrow", "pandas", "dill", "multiprocess", "xxhash", "Jinja2",
            "MarkupSafe", "httpx", "hf_xet", "typing_extensions", "bitsandbytes", "triton", "liger_kernel",
            # gpu flavour: cuda.pathfinder / torch look CUDA libraries up through these distributions
            "cuda-toolkit", "cuda-bindings", "cuda-pathfinder", "nvidia-cudnn-cu13", "nvidia-nccl-cu13",
            "nvidia-cusparselt-cu13", "nvidia-nvshmem-cu13"]
EXCLUDES = [
    # other Qt bindings and Qt modules the studio never imports
    "PyQt5", "PyQt6", "PySide2", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
    "PySide6.QtQuick3D", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.Qt3DCore",
    "PySide6.QtMultimedia", "PySide6.QtNetworkAuth", "PySide6.QtPdf", "PySide6.QtCharts", "PySide6.QtDataVisualization",
    "PySide6.QtBluetooth", "PySide6.QtPositioning", "PySide6.QtSerialPort", "PySide6.QtSql", "PySide6.QtTest",
    "PySide6.QtDesigner", "PySide6.QtUiTools", "PySide6.QtHelp", "PySide6.QtXml", "PySide6.QtConcurrent",
    "PySide6.QtDBus",  # (QtOpenGL stays: pyqtgraph's PlotCurveItem imports it at module level)
    # pyqtgraph's optional 3-D/OpenGL and Jupyter/matplotlib bridges
    "pyqtgraph.opengl", "pyqtgraph.jupyter", "pyqtgraph.examples", "OpenGL", "matplotlib",
    # development tools and test suites
    "tkinter", "_tkinter", "IPython", "jupyter", "notebook", "pytest", "hypothesis", "pytestqt", "PyInstaller",
    "torch.testing._internal.opinfo", "torch.utils.tensorboard", "torch.utils.benchmark", "tensorboard",
    "transformers.testing_utils", "accelerate.test_utils", "datasets.commands",
    # pyarrow parts the datasets library never uses offline
    "pyarrow.flight", "pyarrow._flight", "pyarrow._s3fs",
    "pyarrow._gcsfs", "pyarrow._azurefs", "pyarrow._hdfs", "pyarrow.cuda", "pyarrow._cuda", "pyarrow.gandiva",
    "pyarrow.tests",
    # other frameworks transformers can optionally talk to
    "tensorflow", "jax", "jaxlib", "flax", "onnx", "onnxruntime", "torchvision", "torchaudio", "sklearn", "scipy",
    "sentry_sdk", "wandb", "mlflow", "comet_ml", "neptune", "deepspeed",
]

# Files to drop after analysis, matched against their path inside the bundle.
DROP = [re.compile(p) for p in (
    r"^torch/(test|include|share)/",                  # C++ tests, headers, cmake files
    r"^torch/bin/(?!torch_shm_manager$)",             # test binaries and protoc; torch needs its shm manager
    r"^torch/lib/lib(jitbackend_test|torchbind_test|backend_with_compiler|aoti_custom_ops)\.so",
    r"^torch/testing/_internal/(opinfo|distributed|generated)/",
    r"/tests?/", r"/__pycache__/", r"\.(pyi|h|hpp|cuh|cpp|cmake|a|lib)$",
    # pyarrow: Cython sources, and Flight and S3, which only pyarrow._flight / pyarrow._s3fs load
    # (excluded above). Substrait stays: libarrow_python links it.
    r"^pyarrow/(include|includes|src)/", r"^pyarrow/libarrow_(flight|acero_test|s3)", r"^pyarrow/libarrow_python_flight",
    r"\.(pyx|pxd|pxi)$",
    r"^PySide6/Qt/translations/(?!qtbase_en)",         # English UI: keep only the base English catalogue
    r"^PySide6/Qt/plugins/(qmltooling|sqldrivers|multimedia|designer|sensors|position|canbus|texttospeech|webview|"
    r"virtualkeyboard|scenegraph|networkinformation|tls)/",
    r"^PySide6/Qt/lib/libQt6(Qml|Quick|Pdf|WebEngine|3D|Multimedia|Designer|Sql|Test|Charts|Positioning|Bluetooth|"
    r"VirtualKeyboard|ShaderTools)",
    # gpu flavour. CUDA (nvidia/*): headers, static libs, and the libraries nothing links or loads:
    # the multi-GPU cuSOLVER, the "alt" NVRTC build, FFTW/BLAS drop-in shims, the Nsight profiling
    # back ends of CUPTI and the checkpoint library. Kept: cudart, cuBLAS(Lt), cuDNN (torch dlopens its
    # engine libraries), cuFFT, cuRAND, cuSPARSE(Lt), cuSOLVER, cuFile, nvJitLink, NVRTC (+builtins),
    # CUPTI, NCCL, NVSHMEM: libtorch_cuda/libtorch_cpu link each of them.
    r"^nvidia/[^/]+/include/",
    r"^nvidia/cu\d+/lib/lib(cusolverMg|nvrtc\.alt|nvrtc-builtins\.alt|cufftw|nvblas|nvperf_host|nvperf_target|"
    r"pcsamplingutil|checkpoint)\b",
    # triton: keep ptxas (+ the Blackwell one), libdevice and the C headers its launcher is built
    # with; drop the disassemblers and its own copy of CUPTI (profiler only).
    r"^triton/backends/nvidia/bin/(cuobjdump|nvdisasm)$", r"^triton/backends/nvidia/lib/cupti",
    r"^triton/FileCheck",
    # bitsandbytes ships one kernel library per CUDA/ROCm/XPU release; torch here is CUDA 13.0
    # (bitsandbytes picks libbitsandbytes_cuda<torch.version.cuda>), plus the CPU one.
    r"^bitsandbytes/libbitsandbytes_(rocm|xpu|cuda1[012])",
    r"^PySide6/(lupdate|linguist|assistant|designer|qmlformat|qmlls|qmllint|lrelease|rcc|uic|qmlcachegen|"
    r"qmlimportscanner|qmltyperegistrar|balsam|balsamui|svgtoqml|metaobjectdump|androiddeployqt|qsb)$",
)]
# Sources transformers/torch read with inspect must stay even under a "tests" folder name; triton
# builds its CUDA launcher at run time from driver.c, the CUDA headers it ships and Python's headers
# (bundled by the spec for the gpu flavour).
KEEP = re.compile(r"^(transformers|torch|triton)/.*\.py$|^triton/backends/[^/]+/include/|^include/python3[^/]*/")


def dropped(dest: str) -> bool:
    dest = dest.replace(os.sep, "/")
    return not KEEP.match(dest) and any(p.search(dest) for p in DROP)

# transformers model conversion scripts import third-party research code; never used at run time.
HIDDEN_IMPORT_SKIP = re.compile(r"\.convert_|\.commands\b|\.cli\b|testing_utils|\.benchmark")
