"""GGUF export benchmark: time and size per quantization type, the studio's writer next to llama.cpp's converter.

Models are built from public configs (Llama-3.2-1B, Llama-3.1-8B) with random bf16 weights, written
tensor by tensor into safetensors shards (so building an 8B needs one tensor in memory, not 16 GB),
with a small byte-level BPE tokenizer (the vocabulary's other ids become llama.cpp placeholders).

studio   the worker's path: the model loaded with transformers (as the export holds the merged model),
         written with studio.worker.gguf_write (f16/bf16/q8_0 directly; K-quants from a bf16
         intermediate through llama.cpp's quantizer), timed per type; then, for the smaller shape,
         the verification in llama.cpp on a few prompts.
llama    llama.cpp's own convert_hf_to_gguf.py (``--converter DIR``: a llama.cpp checkout, or the copy
         vendored in llama-cpp-python's source distribution, which is the same llama.cpp the runtime
         is built from) for the types it writes (f16, bf16, q8_0), and bf16 + the same quantizer for
         K-quants. The converter identifies tokenizers by hashing known ones; the benchmark's is not
         one, so it is run through a small wrapper that names it "gpt-2" (written to the work folder
         at run time; nothing of llama.cpp is copied into the studio).

Usage:
  python benchmarks/gguf_bench.py --shapes 1B --quants f16,bf16,q8_0,q4_k_m,q6_k --root /tmp/gguf-bench \
      --converter /tmp/llama.cpp --converter-python /tmp/convvenv/bin/python
Prints a markdown table (and writes results.json to --root). Files are deleted after they are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {"1B": "Llama-3.2-1B", "8B": "Llama-3.1-8B"}
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
WRAPPER = """import sys
sys.argv[0] = {script!r}
sys.path.insert(0, {root!r})
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
import runpy
runpy.run_path({script!r}, run_name="__main__")
"""


def build(shape: str, root: Path) -> Path:
    """config.json, random bf16 safetensors shards and a tokenizer, once per shape."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from studio.core.models import catalog_dir

    out = root / shape
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((catalog_dir() / f"{SHAPES[shape]}.json").read_text())
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["torch_dtype"] = "bfloat16"
    if shape == "8B":
        config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    cfg = AutoConfig.for_model(**config)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(cfg)
    names = [(n, tuple(p.shape)) for n, p in meta.named_parameters()]
    shard, shard_bytes, index, k = {}, 0, {}, 0
    gen = torch.Generator().manual_seed(0)

    def flush() -> None:
        nonlocal shard, shard_bytes, k
        if shard:
            k += 1
            name = f"model-{k:05d}.safetensors"
            save_file(shard, str(out / name), metadata={"format": "pt"})
            index.update({n: name for n in shard})
            shard, shard_bytes = {}, 0

    for name, shape_ in names:
        if name.endswith("norm.weight"):
            t = torch.ones(shape_, dtype=torch.bfloat16)
        elif name in ("lm_head.weight", "model.embed_tokens.weight") and (name == "lm_head.weight" or
                                                                         config.get("tie_word_embeddings")):
            # rows of log-normal length: a few tokens stand out at each position, as in a trained model, so
            # greedy decoding has clear winners instead of exact bf16 ties among 128k alike logits
            rows = torch.exp(torch.randn(shape_[0], 1, generator=gen) * 1.5)
            t = (torch.randn(shape_, generator=gen) * 0.02 * rows).to(torch.bfloat16)
        else:
            t = (torch.randn(shape_, generator=gen) * 0.02).to(torch.bfloat16)
        shard[name] = t
        shard_bytes += t.numel() * 2
        if shard_bytes > 2e9:
            flush()
    flush()
    (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    cfg.save_pretrained(out)
    _tokenizer(out)
    (out / "done").write_text("ok")
    return out


def _tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["the quick brown fox jumps over the lazy dog", "what is the capital of france? paris.",
              "numbers 12345 and 678 in a sentence", "user assistant system"] * 10
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=["<|begin_of_text|>",
                                                                                       "<|end_of_text|>", "<|eot_id|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")
    fast.chat_template = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                          "message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
                          "{{ '<|im_start|>assistant\\n' }}{% endif %}")
    fast.save_pretrained(out)


def studio_export(folder: Path, quants: list[str], work: Path, verify: bool) -> list[dict]:
    """The worker's writer on the loaded model, timed per type."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.core.gguf_plan import estimate, quant, vocab_bytes
    from studio.core.gguf_support import classify_tokenizer
    from studio.worker.gguf_vocab import build_vocab
    from studio.worker.gguf_write import write_gguf

    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    load_s = time.time() - t0
    tok = AutoTokenizer.from_pretrained(folder)
    tj = json.loads(tok.backend_tokenizer.to_str())
    vocab = build_vocab(tok, model.config.vocab_size, classify_tokenizer(tj), "<|eot_id|>")
    config = model.config.to_dict()
    rows = []
    for name in quants:
        q = quant(name)
        path = work / f"studio-{name}.gguf"
        est = estimate(config, name, vocab_bytes=vocab_bytes(tj, tok.chat_template, model.config.vocab_size))
        t0 = time.time()
        write_gguf(model, config, vocab, tok.chat_template, path, q, "bench", lambda *a: None, lambda line: None,
                   expected_bytes=est.size_bytes)
        seconds = time.time() - t0
        row = {"tool": "studio", "quant": name, "seconds": round(seconds, 1), "bytes": path.stat().st_size,
               "estimate_bytes": est.size_bytes, "estimate_seconds": round(est.seconds, 1), "load_s": round(load_s, 1)}
        if verify and name in ("f16", "q4_k_m"):
            row.update(_verify(model, tok, path, q))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if name == "f16":
            path.rename(work / "studio-f16-keep.gguf")  # compared tensor by tensor with the converter's
        else:
            path.unlink()
    return rows


def same_tensors(a: Path, b: Path) -> dict:
    """Tensor by tensor: the same names, types, shapes and bytes in both files?"""
    import gguf
    import numpy as np

    ta = {t.name: t for t in gguf.GGUFReader(str(a)).tensors}
    tb = {t.name: t for t in gguf.GGUFReader(str(b)).tensors}
    def same(n: str) -> bool:
        if n not in ta or n not in tb or ta[n].tensor_type != tb[n].tensor_type:
            return False
        return np.array_equal(np.asarray(ta[n].data).view(np.uint8), np.asarray(tb[n].data).view(np.uint8))

    differ = sorted(n for n in ta.keys() | tb.keys() if not same(n))
    return {"tensors": len(ta), "identical": len(ta) - len(differ), "differ": differ[:5]}


def _verify(model, tok, path: Path, q) -> dict:
    from studio.worker.verify import CheckInputs, compute_reference
    from studio.worker.verify_gguf import verify_gguf

    questions = ["what is the capital of france?", "the quick brown fox", "numbers 12345 and 678"]
    prompts = [tok(tok.apply_chat_template([{"role": "user", "content": x}], add_generation_prompt=True,
                                           tokenize=False), add_special_tokens=False)["input_ids"] for x in questions]
    answer = tok("paris. the lazy dog jumps", add_special_tokens=False)["input_ids"]
    inputs = CheckInputs(prompts, [p + answer for p in prompts],
                         [[False] * len(p) + [True] * len(answer) for p in prompts], "bench prompts")
    stops = {tok.eos_token_id}
    t0 = time.time()
    ref = compute_reference(model, inputs, stops)
    verdict = verify_gguf(path, inputs, ref, tok, q, stops, lambda line: None)
    return {"verify_s": round(time.time() - t0, 1), "verdict": verdict.summary()}


def llama_convert(folder: Path, quants: list[str], work: Path, converter: Path, python: str) -> list[dict]:
    """llama.cpp's convert_hf_to_gguf.py for its own types; bf16 + llama.cpp's quantizer for K-quants."""
    import ctypes

    import llama_cpp

    script = converter / "convert_hf_to_gguf.py"
    wrapper = work / "run_converter.py"
    wrapper.write_text(WRAPPER.format(script=str(script), root=str(converter)))
    env = dict(os.environ, PYTHONPATH=str(converter / "gguf-py"))  # the converter's own gguf-py, not the pip one
    rows = []
    for name in quants:
        outtype = name if name in CONVERTER_TYPES else "bf16"
        path = work / f"llama-{outtype}.gguf"
        t0 = time.time()
        res = subprocess.run([python, str(wrapper), str(folder), "--outtype", outtype, "--outfile", str(path)],
                             capture_output=True, text=True, env=env, cwd=str(work))
        seconds = time.time() - t0
        if res.returncode != 0:
            rows.append({"tool": "llama.cpp", "quant": name, "error": res.stderr.strip().splitlines()[-1][:200]})
            print(json.dumps(rows[-1]), flush=True)
            continue
        if name not in CONVERTER_TYPES:
            final = work / f"llama-{name}.gguf"
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = __import__("studio.core.gguf_plan", fromlist=["quant"]).quant(name).ftype
            params.nthread = os.cpu_count() or 1
            t1 = time.time()
            llama_cpp.llama_model_quantize(str(path).encode(), str(final).encode(), ctypes.byref(params))
            seconds += time.time() - t1
            path.unlink()
            path = final
        rows.append({"tool": "llama.cpp", "quant": name, "seconds": round(seconds, 1), "bytes": path.stat().st_size})
        ours = work / "studio-f16-keep.gguf"
        if name == "f16" and ours.exists():
            rows[-1]["same_tensors_as_studio"] = same_tensors(ours, path)
            ours.unlink()
        print(json.dumps(rows[-1]), flush=True)
        path.unlink()
    return rows


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil

    return f"{cpu or platform.processor()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"


def table(results: dict) -> str:
    lines = ["| shape | type | studio s | studio size | estimate | llama.cpp s | llama.cpp size |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for shape, rows in results.items():
        llama = {r["quant"]: r for r in rows if r["tool"] == "llama.cpp"}
        for r in (r for r in rows if r["tool"] == "studio"):
            other = llama.get(r["quant"], {})
            lines.append(f"| {shape} | {r['quant']} | {r['seconds']:.0f} | {r['bytes'] / 1e9:.3f} GB | "
                         f"{r['estimate_bytes'] / 1e9:.3f} GB, {r['estimate_seconds']:.0f} s | "
                         f"{other.get('seconds', '—')} | "
                         + (f"{other['bytes'] / 1e9:.3f} GB |" if "bytes" in other
                            else f"{other.get('error', '—')} |"))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1B")
    ap.add_argument("--quants", default="f16,bf16,q8_0,q6_k,q5_k_m,q4_k_m")
    ap.add_argument("--root", default="/tmp/gguf-bench")
    ap.add_argument("--converter", default="", help="llama.cpp folder with convert_hf_to_gguf.py")
    ap.add_argument("--converter-python", default=sys.executable,
                    help="the Python to run it with (it needs sentencepiece, which the studio does not)")
    ap.add_argument("--no-verify", action="store_true")
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    quants = args.quants.split(",")
    results: dict[str, list] = {}
    for shape in args.shapes.split(","):
        t0 = time.time()
        folder = build(shape, root)
        print(f"{shape}: model ready in {time.time() - t0:.0f} s", flush=True)
        work = root / f"{shape}-out"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        rows = studio_export(folder, quants, work, verify=not args.no_verify and shape == "1B")
        if args.converter:
            rows += llama_convert(folder, quants, work, Path(args.converter), args.converter_python)
        results[shape] = rows
    (root / "results.json").write_text(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                                                   "results": results}, indent=1))
    print(f"\n{machine()}, {time.strftime('%Y-%m-%d')}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
