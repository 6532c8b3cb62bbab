"""The merged and adapter checks: the export reloaded the way a user without the studio would.

- merged: plain ``AutoModelForCausalLM.from_pretrained`` of the folder; greedy tokens equal to the
  exporting process's model, logits within 1e-3 of their scale, the saved tokenizer giving the same ids.
- adapter: plain ``PeftModel.from_pretrained`` over a fresh base (non-PEFT methods: plain
  transformers, or the trained tensors loaded over the base by name), compared in the same way
  with the studio's own loading of the trained weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.worker.verify import PROBE, Check, CheckInputs, Reference, Verdict, hf_greedy, prompt_report

LOGIT_TOLERANCE = 1e-3  # max |logit difference| / max |logit|


def _compare_models(model: Any, inputs: CheckInputs, ref: Reference, stops: set[int], tokenizer: Any,
                    verdict: Verdict, use_cache: bool = True) -> None:
    import torch

    model.eval()
    worst = scale = 0.0
    with torch.no_grad():
        for ids, want in zip(inputs.sequences, ref.logits):
            have = model(input_ids=torch.tensor([ids])).logits[0].float()[-len(ids):].numpy()
            worst = max(worst, float(np.abs(have - want).max()))
            scale = max(scale, float(np.abs(want).max()))
        got = [hf_greedy(model, p, stops, use_cache)[0] for p in inputs.prompts]
    verdict.prompts = prompt_report(tokenizer, inputs, ref, got)
    equal = sum(p["equal"] for p in verdict.prompts)
    verdict.checks.append(Check("greedy", equal == len(got), f"greedy tokens identical on {equal}/{len(got)} prompts",
                                {"equal_prompts": equal, "prompts": len(got)}))
    rel = worst / max(scale, 1e-6)
    verdict.checks.append(Check("logits", rel <= LOGIT_TOLERANCE, f"logits differ by at most {worst:.2e} "
                                f"({rel:.1e} of their scale {scale:.1f})",
                                {"max_abs_diff": worst, "relative": rel}))


def _tokenizer_files_check(folder: Path, tokenizer: Any, inputs: CheckInputs) -> Check:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001 - a tokenizer that does not load is the verdict
        return Check("tokenizer", False, f"the exported tokenizer does not load: {e}")
    texts = [tokenizer.decode(p) for p in inputs.prompts] + [PROBE]
    bad = [t for t in texts if tok(t, add_special_tokens=False)["input_ids"] !=
           tokenizer(t, add_special_tokens=False)["input_ids"]]
    if bad:
        return Check("tokenizer", False, f"the exported tokenizer encodes {len(bad)} of {len(texts)} texts differently")
    return Check("tokenizer", True, f"the exported tokenizer gives the same ids on {len(texts)} texts")


def verify_merged(folder: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, stops: set[int],
                  dtype: Any) -> Verdict:
    from transformers import AutoModelForCausalLM

    started = time.time()
    verdict = Verdict("merged", ".", [], inputs.source, criteria=(
        "reloaded with plain transformers AutoModelForCausalLM: greedy tokens identical to the exporting "
        f"process's model, logits within {LOGIT_TOLERANCE:g} of their scale, tokenizer ids identical"))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except Exception as e:  # noqa: BLE001 - a model that does not load is the verdict
        verdict.checks.append(Check("loads", False, f"transformers cannot load the export: {e}"))
    else:
        _compare_models(model, inputs, ref, stops, tokenizer, verdict)
        del model
    verdict.checks.append(_tokenizer_files_check(folder, tokenizer, inputs))
    verdict.seconds = time.time() - started
    return verdict


def plain_reload(folder: Path, base_location: str, dtype: Any) -> tuple[Any, str]:
    """The exported adapter over a fresh base, loaded the way a user without the studio would."""
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_location, dtype=dtype)
        return PeftModel.from_pretrained(base, str(folder)), "plain PEFT (PeftModel.from_pretrained over the base)"
    if (folder / "config.json").is_file():
        return (AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype),
                "plain transformers (AutoModelForCausalLM.from_pretrained)")
    from safetensors.torch import load_file

    model = AutoModelForCausalLM.from_pretrained(base_location, dtype=dtype)
    tensors: dict[str, Any] = {}
    for f in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    missing = [n for n in tensors if n not in dict(model.named_parameters())]
    if missing:
        raise ValueError(f"{len(missing)} exported tensors are not parameters of the base (first: {missing[0]})")
    model.load_state_dict(tensors, strict=False)
    return model, "plain transformers + safetensors (the trained tensors loaded over the base by name)"


def verify_adapter(folder: Path, inputs: CheckInputs, ref: Reference, tokenizer: Any, stops: set[int],
                   base_location: str, dtype: Any, use_cache: bool = True) -> Verdict:
    started = time.time()
    verdict = Verdict("adapter", ".", [], inputs.source)
    try:
        model, how = plain_reload(folder, base_location, dtype)
    except Exception as e:  # noqa: BLE001 - an adapter that does not load is the verdict
        verdict.checks.append(Check("loads", False, f"the export does not load: {e}"))
    else:
        verdict.criteria = (f"reloaded with {how}: logits within {LOGIT_TOLERANCE:g} of their scale of the "
                            "studio's own loading of the trained weights, greedy tokens identical")
        _compare_models(model, inputs, ref, stops, tokenizer, verdict, use_cache)
        del model
    verdict.seconds = time.time() - started
    return verdict
