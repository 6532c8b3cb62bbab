"""The GGUF check: the file loaded in llama.cpp and compared with the transformers model it came from.

llama.cpp (llama-cpp-python) runs in a child process (studio.worker.llama_check). Its tokenizer
must give transformers' token ids for the prompts and a probe text, with BOS/EOS added alike.
f32/f16/bf16 must then produce the same greedy tokens, except after a point where the source
itself is at a near tie (its top two logits closer than 16-bit arithmetic resolves: bf16 keeps
about three significant digits), which is reported, not failed. Quantized types report top-1
agreement and the perplexity change on the answer tokens, and fail below the agreement a correct
file reaches (studio.core.gguf_plan.QUANTS min_top1) or when perplexity rises by more than half.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from studio.worker.verify import (MAX_NEW_TOKENS, PROBE, Check, CheckInputs, Reference, Verdict, agreement, ppl,
                                  prompt_report)

MAX_PPL_INCREASE = 0.5  # a quantized file whose perplexity rises more than this is broken, not just rounded
TIE = 0.01  # a near tie: the source's top two logits within this share of the top one


def verify_gguf(path: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, quant: Any, stops: set[int],
                log: Callable[[str], None]) -> Verdict:
    from studio.worker.llama_check import run_llama, spec_for

    started = time.time()
    criteria = ("tokenizer: llama.cpp's token ids equal transformers' for every prompt and a probe text; "
                + ("greedy tokens identical to the source model on every prompt, except after a point where the "
                   f"source itself is at a near tie (top two logits within {TIE:.0%} of the top one, below 16-bit "
                   "resolution)" if quant.lossless else
                   f"top-1 agreement with the source model >= {quant.min_top1:.0%} and perplexity at most "
                   f"{MAX_PPL_INCREASE:.0%} above the source's on the check's answer tokens"))
    verdict = Verdict("gguf", path.name, [], inputs.source, quant=quant.name, criteria=criteria)
    texts = [tokenizer.decode(p) for p in inputs.prompts] + [PROBE]
    res, note = run_llama(spec_for(path, texts, inputs.prompts, inputs.sequences, stops, MAX_NEW_TOKENS), log)
    verdict.runtime_note = note
    if res.get("error"):
        verdict.checks.append(Check("loads", False, f"llama.cpp cannot run the file: {res['error']}"))
        verdict.seconds = time.time() - started
        return verdict
    verdict.checks.append(_tokenizer_check(tokenizer, texts, res))
    got = res["greedy"]
    verdict.prompts = prompt_report(tokenizer, inputs, ref, got)
    equal = sum(p["equal"] for p in verdict.prompts)
    top1 = [np.asarray(t) for t in res["top1"]]
    nll = [np.asarray([v for v, s in zip(seq, scored[1:]) if s], dtype=np.float64)
           for seq, scored in zip(res["nll"], inputs.scored)]
    agree = agreement(ref.top1, top1)
    ppl_src, ppl_gguf = ppl(ref.nll), ppl(nll)
    change = ppl_gguf / ppl_src - 1 if ppl_src == ppl_src and ppl_src > 0 else float("nan")
    values = {"equal_prompts": equal, "prompts": len(inputs.prompts)}
    greedy_detail = f"greedy tokens identical on {equal}/{len(inputs.prompts)} prompts"
    if quant.lossless:
        parted = _partings(ref, got)
        ties = [p for p in parted if p["tie"]]
        values["near_ties"] = ties
        if parted:
            greedy_detail += "; " + ", ".join(
                f"prompt {p['prompt'] + 1} parts at token {p['at'] + 1} where the source's top two logits differ by "
                f"{p['gap']:.4f}" + (" (a near tie)" if p["tie"] else "") for p in parted)
        verdict.checks.append(Check("greedy", len(ties) == len(parted), greedy_detail, values))
    else:
        verdict.checks.append(Check("greedy", True, greedy_detail + " (informative for a quantized file)", values))
    verdict.checks.append(Check("top1_agreement", quant.lossless or agree >= quant.min_top1,
                                f"top-1 agreement {agree:.1%} over {sum(len(t) for t in top1)} positions",
                                {"value": round(agree, 4)}))
    verdict.checks.append(Check("perplexity", quant.lossless or not (change > MAX_PPL_INCREASE),
                                f"perplexity {ppl_src:.4g} -> {ppl_gguf:.4g} "
                                f"({f'{change:+.2%}' if math.isfinite(change) else 'not comparable'}) on "
                                f"{sum(len(n) for n in nll)} answer tokens",
                                {"source": ppl_src, "export": ppl_gguf, "change": change}))
    verdict.seconds = time.time() - started
    return verdict


def _tokenizer_check(tokenizer: Any, texts: list[str], res: dict[str, Any]) -> Check:
    bad = [text for text, have in zip(texts, res["tokens"])
           if tokenizer(text, add_special_tokens=False)["input_ids"] != have]
    want = tokenizer("a", add_special_tokens=True)["input_ids"]
    if want != res["bos_probe"]:
        bad.append(f"BOS/EOS around 'a': transformers {want}, llama.cpp {res['bos_probe']}")
    if bad:
        return Check("tokenizer", False, f"llama.cpp tokenizes {len(bad)} of {len(texts) + 1} texts differently "
                     f"(first: {bad[0][:80]!r})", {"mismatches": bad[:5]})
    return Check("tokenizer", True, f"token ids identical on {len(texts) + 1} texts")


def _partings(ref: Reference, got: list[list[int]]) -> list[dict[str, Any]]:
    """Where a lossless file's greedy tokens leave the source's, and whether the source was at a near tie there."""
    out = []
    for i, (want, have) in enumerate(zip(ref.greedy, got)):
        at = next((k for k, (a, b) in enumerate(zip(want, have)) if a != b), None)
        if at is None and len(want) != len(have):
            at = min(len(want), len(have))
        if at is None:
            continue
        gap = ref.margins[i][at] if at < len(ref.margins[i]) else float("inf")
        top = abs(ref.tops[i][at]) if at < len(ref.tops[i]) else 1.0
        out.append({"prompt": i, "at": at, "gap": gap, "tie": gap <= TIE * max(1.0, top)})
    return out
