"""Run a GGUF file in llama.cpp in a child process, so a crash in native code is a verdict, not a dead export.

llama.cpp aborts the whole process on a file it cannot use (GGML_ASSERT) and can crash in a CPU
kernel (on the machine this was written on, its AMX/AVX-512 weight-repacking path segfaults on
any quantized tensor). ``run_llama(spec)`` therefore starts ``--worker llama-check SPEC RESULT``
and reads the result file; if the child dies, it tries once more with weight repacking off
(llama.cpp's ``--no-repack``) and says so in the note. The child tokenizes the check's texts,
runs greedy decoding on the prompts, and records the top token and -log p of the next token at
every position of each sequence -- numbers, not logits, cross the process boundary.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

LOG_TAIL = 40


def run_llama(spec: dict[str, Any], log: Callable[[str], None], timeout_s: float = 3600) -> tuple[dict[str, Any], str]:
    """(result, note): result has ``error`` set when llama.cpp could not run the file at all."""
    with tempfile.TemporaryDirectory(prefix="studio-llama-check-") as tmp:
        first = _attempt(spec, Path(tmp), True, log, timeout_s)
        if first.get("error") is None or not first.get("crashed"):
            return first, ""
        log(f"llama.cpp: {first['error']}; trying again with weight repacking off")
        second = _attempt(spec, Path(tmp), False, log, timeout_s)
        if second.get("error") is None:
            note = (f"llama.cpp crashed in its CPU weight-repacking kernels on this machine ({first['error']}); the "
                    "check ran with repacking off (llama.cpp --no-repack). That is a llama.cpp/CPU matter, not the "
                    "file: if llama.cpp crashes for you too, add --no-repack.")
            return second, note
        return second, ""


def _attempt(spec: dict[str, Any], tmp: Path, repack: bool, log: Callable[[str], None],
             timeout_s: float) -> dict[str, Any]:
    from studio.core.diagnostics import app_command
    from studio.core.launcher import worker_env

    spec_path, result_path, log_path = tmp / "spec.json", tmp / f"result-{repack}.json", tmp / f"log-{repack}.txt"
    spec_path.write_text(json.dumps({**spec, "repack": repack}), encoding="utf-8")
    cmd = app_command("--worker", "llama-check", str(spec_path), str(result_path))
    with open(log_path, "wb") as out:
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  env=worker_env(), timeout=timeout_s)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL:]
    for line in tail:
        if "error" in line.lower() or "assert" in line.lower() or "warn" in line.lower():
            log(f"llama.cpp: {line}")
    if rc == 0 and result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    if rc is None:
        return {"error": f"llama.cpp did not finish within {timeout_s:.0f} s", "crashed": False}
    how = f"signal {signal.Signals(-rc).name}" if rc < 0 and -rc in signal.Signals._value2member_map_ else f"exit {rc}"
    last = next((line for line in reversed(tail) if line.strip()), "")
    return {"error": f"llama.cpp died ({how})" + (f": {last.strip()[:300]}" if last else ""), "crashed": True}


def main(spec_path: str, result_path: str) -> int:
    """The child: load the file, answer the spec, write the result."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    result = check(spec)
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def check(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    llm = _load(spec["path"], int(spec["n_ctx"]), bool(spec.get("repack", True)))
    try:
        tokens = [llm.tokenize(t.encode("utf-8"), add_bos=False, special=True) for t in spec["texts"]]
        with_specials = llm.tokenize(spec["bos_probe"].encode("utf-8"), add_bos=True, special=True)
        stops = set(spec["stops"])
        greedy = []
        for prompt in spec["prompts"]:
            llm.reset()
            llm.eval(prompt)
            out: list[int] = []
            for _ in range(int(spec["max_new_tokens"])):
                nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
                out.append(nxt)
                if nxt in stops:
                    break
                llm.eval([nxt])
            greedy.append(out)
        top1, nll = [], []
        for ids in spec["sequences"]:
            llm.reset()
            llm.eval(ids)
            logits = np.asarray(llm.scores[:len(ids)], dtype=np.float64)
            top1.append(logits.argmax(-1).tolist())
            peak = logits.max(-1)
            logz = np.log(np.exp(logits - peak[:, None]).sum(-1)) + peak
            nll.append([float(logz[t - 1] - logits[t - 1, ids[t]]) if math.isfinite(logz[t - 1]) else float("inf")
                        for t in range(1, len(ids))])
    finally:
        llm.close()
    return {"error": None, "tokens": tokens, "bos_probe": with_specials, "greedy": greedy, "top1": top1,
            "nll": nll, "repack": bool(spec.get("repack", True))}


def _load(path: str, n_ctx: int, repack: bool) -> Any:
    import llama_cpp
    import llama_cpp.llama as llama_module

    if not repack:  # llama-cpp-python has no argument for it: adjust the defaults it starts from
        real = llama_cpp.llama_model_default_params

        def defaults() -> Any:
            params = real()
            params.use_extra_bufts = False
            return params

        llama_module.llama_cpp.llama_model_default_params = defaults
    return llama_cpp.Llama(path, n_ctx=n_ctx, n_batch=min(512, n_ctx), logits_all=True, verbose=False,
                           n_threads=max(1, os.cpu_count() or 1), n_gpu_layers=0)


def spec_for(path: Path, texts: list[str], prompts: list[list[int]], sequences: list[list[int]],
             stops: set[int], max_new_tokens: int, bos_probe: str = "a") -> dict[str, Any]:
    n_ctx = max([len(s) for s in sequences] + [len(p) + max_new_tokens for p in prompts]) + 8
    return {"path": str(path), "n_ctx": n_ctx, "texts": texts, "prompts": prompts, "sequences": sequences,
            "stops": sorted(stops), "max_new_tokens": max_new_tokens, "bos_probe": bos_probe}
