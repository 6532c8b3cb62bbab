"""Write a merged transformers model as a GGUF file, and quantize it with llama.cpp's own quantizer.

``write_gguf`` streams: the header lists every tensor (name, shape, type, size) first, then each
tensor is converted and written in turn, so memory holds the model plus one converted tensor,
never a second copy. f32/f16/bf16 and q8_0 are written directly (the ``gguf`` library's Q8_0);
the K-quants are made by ``llama_model_quantize`` (llama-cpp-python's binding of llama.cpp) from
a lossless intermediate written beside the target and deleted afterwards. While llama.cpp works,
a watcher reports the growing output file against the estimated size.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.core.gguf_plan import Quant
from studio.worker.errors import WorkerError
from studio.worker.gguf_arch import extra_tensors, gguf_arch, gguf_tensors, write_hparams
from studio.worker.gguf_vocab import Vocab, write_vocab

Progress = Callable[[str, int, int], None]


def intermediate_type(model: Any) -> str:
    """The lossless type a K-quant starts from: the merged model's own precision."""
    import torch

    return {torch.float32: "f32", torch.float16: "f16"}.get(model.dtype, "bf16")


def write_gguf(model: Any, config: dict[str, Any], vocab: Vocab, chat_template: str, path: Path, quant: Quant,
               name: str, progress: Progress, log: Callable[[str], None], expected_bytes: int = 0) -> None:
    """The model as ``path`` in ``quant``; K-quants pass through ``<path>.intermediate.gguf``."""
    from studio.core.gguf_plan import quant as quant_named

    if not quant.by_llama_cpp:
        _write(model, config, vocab, chat_template, path, quant, name, progress)
        return
    middle = quant_named(intermediate_type(model))
    tmp = path.with_name(path.stem + f".{middle.label}-intermediate.gguf")
    try:
        _write(model, config, vocab, chat_template, tmp, middle, name, progress)
        quantize(tmp, path, quant, progress, log, expected_bytes)
    finally:
        tmp.unlink(missing_ok=True)


def _write(model: Any, config: dict[str, Any], vocab: Vocab, chat_template: str, path: Path, quant: Quant,
           name: str, progress: Progress) -> None:
    import gguf
    import torch

    writer = gguf.GGUFWriter(str(path), gguf_arch(config))
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_file_type(quant.ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    write_hparams(writer, config)
    write_vocab(writer, vocab, chat_template)
    named = [(n, t.shape, lambda t=t: t) for n, t in extra_tensors(config)]
    named += list(gguf_tensors(iter(model.state_dict().items()), config))
    kinds = [_target(len(shape), shape[-1], quant.name) for _, shape, _ in named]
    for (tensor_name, shape, _), kind in zip(named, kinds):
        ggml_type, nbytes = _type_and_bytes(kind, shape)
        writer.add_tensor_info(tensor_name, shape, np.dtype(np.float32), nbytes, raw_dtype=ggml_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    with torch.no_grad():
        for i, ((_, _, load), kind) in enumerate(zip(named, kinds), 1):
            writer.write_tensor_data(_convert(load(), kind))
            if i % 8 == 0 or i == len(named):
                progress(f"writing {quant.label}", i, len(named))
    writer.close()


def _target(ndim: int, cols: int, quant_name: str) -> str:
    """What one tensor is written as: vectors (norms, biases) stay f32, as llama.cpp wants them."""
    if ndim <= 1:
        return "f32"
    if quant_name == "q8_0" and cols % 32:
        return "f16"  # Q8_0 packs whole rows of 32-weight blocks; llama.cpp's converter falls back the same way
    return quant_name


def _type_and_bytes(kind: str, shape: tuple[int, ...]) -> tuple[Any, int]:
    import gguf

    n = int(np.prod(shape))
    ggml = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
            "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[kind]
    block, size = gguf.GGML_QUANT_SIZES[ggml]
    return ggml, n // block * size


def _convert(tensor: Any, kind: str) -> np.ndarray:
    import torch

    if isinstance(tensor, np.ndarray):
        tensor = torch.from_numpy(tensor)
    t = tensor.detach().to("cpu")
    if kind == "f32":
        return t.float().contiguous().numpy()
    if kind == "f16":
        return t.to(torch.float16).contiguous().numpy()
    if kind == "bf16":
        return t.to(torch.bfloat16).contiguous().view(torch.int16).numpy()
    import gguf

    return gguf.quants.quantize(t.float().contiguous().numpy(), gguf.GGMLQuantizationType.Q8_0)


def quantize(src: Path, dst: Path, quant: Quant, progress: Progress, log: Callable[[str], None],
             expected_bytes: int = 0) -> None:
    """llama.cpp's quantizer (all cores), with the growing output reported as progress."""
    import llama_cpp

    route_llama_log(log)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = quant.ftype
    params.nthread = max(1, os.cpu_count() or 1)
    done = threading.Event()

    def watch() -> None:
        total = max(1, expected_bytes)
        while not done.wait(1.0):
            size = dst.stat().st_size if dst.exists() else 0
            progress(f"quantizing to {quant.label} (llama.cpp)", min(size, total - 1), total)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.time()
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    finally:
        done.set()
        watcher.join()
    if rc != 0 or not dst.exists():
        from studio.core import disk

        free = disk.free_bytes(dst.parent)
        if free is not None and free < disk.NEARLY_FULL_BYTES:  # llama.cpp reports a failed write only as a code
            raise OSError(errno.ENOSPC, f"No space left on device while llama.cpp wrote {dst.name}", str(dst))
        raise WorkerError(f"llama.cpp could not quantize to {quant.label} (code {rc}); see the export log",
                          kind="model")
    log(f"gguf: llama.cpp quantized to {quant.label} in {time.time() - started:.1f} s")
    progress(f"quantizing to {quant.label} (llama.cpp)", 1, 1)


_ROUTED: list[Any] = []  # the callback C holds a pointer to must stay alive


def route_llama_log(log: Callable[[str], None]) -> None:
    """llama.cpp's warnings and errors into the export log; its per-tensor chatter (info) nowhere."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level in (3, 4):  # GGML_LOG_LEVEL_WARN, GGML_LOG_LEVEL_ERROR
            line = text.decode("utf-8", "replace").rstrip()
            if line:
                log(f"llama.cpp: {line}")

    _ROUTED[:] = [callback]
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
