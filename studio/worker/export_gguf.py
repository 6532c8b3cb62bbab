"""``--worker export RUN_DIR --kind gguf --quant Q --out DIR``: the trained run as one GGUF file.

DIR ends up holding ``<run>-<QUANT>.gguf`` (tensors, tokenizer, chat template, special tokens),
``Modelfile`` (Ollama), ``verification.json`` and ``README.md``. The order is what makes it safe:

1. ``gguf_offer`` (studio.core.gguf_support): a method that cannot merge, an architecture or a
   tokenizer llama.cpp cannot reproduce stops here, naming what is supported, before any work;
2. the size/time estimate (an ``estimate`` event), and a free-space check against it;
3. load and merge (studio.worker.merging), then the reference outputs for the check;
4. everything is written into ``DIR.tmp``; the merged model is freed; the file is loaded in
   llama.cpp and compared (studio.worker.verify); only then is ``DIR.tmp`` renamed to ``DIR``.
   A full disk or a kill leaves at most ``DIR.tmp``, which never looks complete and is removed
   by the next export. A failed check keeps the export, with FAILED in verification.json and
   README.md, and the job exits non-zero.
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any, Optional

from studio.core.chat_formats import Translation, run_chat_template, translate
from studio.core import disk
from studio.core.disk import human_bytes
from studio.core.gguf_plan import Estimate, quant, text_config
from studio.core.gguf_support import classify_tokenizer, gguf_estimate, gguf_offer
from studio.core.modelfile import modelfile, ollama_name, sampling_from_generation_config
from studio.core.runs import Run
from studio.worker.errors import WorkerError
from studio.worker.reporter import Reporter
from studio.worker.verify import Verdict

STEPS = 6


def export_gguf(trained: Path, out: Path, cfg: Any, run: Run, rep: Reporter, quant_name: str = "f16",
                verify: bool = True, dtype: str = "auto") -> Optional[Verdict]:
    from studio.worker.gguf_vocab import adds_specials, build_vocab
    from studio.worker.gguf_write import write_gguf
    from studio.worker.merging import load_merged
    from studio.worker.saving import save_atomically
    from studio.worker.verify import check_inputs, compute_reference, save_verdict, stop_ids
    from studio.worker.verify_gguf import verify_gguf

    try:
        q = quant(quant_name)
    except ValueError as e:
        raise WorkerError(str(e), kind="config") from None
    offer = gguf_offer(cfg, trained)
    if not offer.ok:
        raise WorkerError(f"GGUF is not offered for this run: {offer.reason}", kind="config")
    est = gguf_estimate(cfg, offer, q.name, verify)
    rep.emit("estimate", kind="gguf", quant=q.name, size_bytes=est.size_bytes, seconds=round(est.seconds, 1),
             detail=est.text())
    _check_room(out, est, q.label)

    def progress(label: str, current: int, total: int) -> None:
        rep.emit("progress", label=label, current=current, total=total)

    started = time.time()
    merged = load_merged(trained, cfg, dtype, lambda label, i, n: progress(label, i, STEPS), rep.log, STEPS)
    tokenizer = merged.tokenizer
    template, template_source = run_chat_template(cfg.data.effective_template,
                                                  getattr(tokenizer, "chat_template", None))
    config = merged.model.config.to_dict()
    add_bos, _ = adds_specials(tokenizer)
    translation = translate(template, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                            adds_bos=add_bos)
    eot = _end_of_turn(tokenizer, translation)
    plan = classify_tokenizer(json.loads(tokenizer.backend_tokenizer.to_str()))  # the tokenizer as loaded
    if plan.problem:
        raise WorkerError(f"GGUF is not offered for this run: {plan.problem}", kind="config")
    vocab = build_vocab(tokenizer, int(text_config(config)["vocab_size"]), plan, eot)
    stops = stop_ids(tokenizer, merged.location)
    if eot:
        stops.add(tokenizer.convert_tokens_to_ids(eot))
    inputs = ref = None
    raw_text = cfg.data.format == "text"
    if verify:
        progress("computing the reference outputs for the check", 3, STEPS)
        inputs = check_inputs(cfg, tokenizer, rep.log)
        ref = compute_reference(merged.model, inputs, stops)
    file_name = f"{ollama_name(cfg.name)}-{q.label}.gguf"
    verdict: Optional[Verdict] = None

    def write(folder: Path) -> None:
        nonlocal verdict
        path = folder / file_name
        progress(f"writing {file_name}", 4, STEPS)
        write_gguf(merged.model, config, vocab, template, path, q, cfg.name,
                   lambda label, i, n: rep.emit("progress", label=label, current=i, total=n), rep.log,
                   expected_bytes=est.size_bytes)
        merged.model = None  # freed before llama.cpp maps the file: an 8B model fits in memory once, not twice
        gc.collect()
        rep.log(f"gguf: wrote {path.name}, {human_bytes(path.stat().st_size)} (estimated "
                f"{human_bytes(est.size_bytes)})")
        gen = _generation_config(merged.location)
        (folder / "Modelfile").write_text(modelfile(
            file_name, run_name=cfg.name, translation=None if raw_text else translation,
            template_source=template_source, stops=_stop_strings(tokenizer, translation, stops),
            sampling=sampling_from_generation_config(gen), raw_text=raw_text), encoding="utf-8")
        if inputs is not None and ref is not None:
            progress("verifying in llama.cpp", 5, STEPS)
            verdict = verify_gguf(path, inputs, ref, tokenizer, q, stops, rep.log)
            save_verdict(folder, verdict)
        (folder / "README.md").write_text(_readme(cfg, file_name, q, path.stat().st_size, verdict, translation,
                                                  time.time() - started), encoding="utf-8")

    save_atomically(out, write)
    progress("done", STEPS, STEPS)
    return verdict


def _check_room(out: Path, est: Estimate, label: str) -> None:
    need = int((est.size_bytes + est.intermediate_bytes) * 1.05) + (64 << 20)
    free = disk.free_bytes(out)
    if free is not None and free < need:
        extra = f" plus a {human_bytes(est.intermediate_bytes)} intermediate file" if est.intermediate_bytes else ""
        raise WorkerError(f"A {label} GGUF of this model needs about {human_bytes(est.size_bytes)}{extra} while it is "
                          f"written; there is {disk.free_space(out)}. Free some space or choose another folder.",
                          kind="disk")


def _end_of_turn(tokenizer: Any, translation: Translation) -> str:
    """The chat format's end-of-turn token, when it is one token of this vocabulary."""
    for stop in translation.format.stops:
        tid = tokenizer.convert_tokens_to_ids(stop)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            return stop
    return ""


def _stop_strings(tokenizer: Any, translation: Translation, stops: set[int]) -> list[str]:
    words = list(translation.format.stops)
    words += [tokenizer.convert_ids_to_tokens(i) for i in sorted(stops)]
    return [w for w in words if isinstance(w, str) and w]


def _generation_config(location: str) -> dict[str, Any]:
    from studio.core.gguf_support import read_json

    return read_json(Path(location) / "generation_config.json")


def _readme(cfg: Any, file_name: str, q: Any, size: int, verdict: Optional[Verdict], translation: Translation,
            seconds: float) -> str:
    name = ollama_name(cfg.name)
    lines = [f"# {cfg.name} (GGUF, {q.label})", "",
             f"`{file_name}`: {human_bytes(size)}, {q.note}; exported by the studio in {seconds:.0f} s.", ""]
    if verdict is None:
        lines += ["Not verified (exported with --no-verify).", ""]
    else:
        lines += [f"## Verification: {'PASSED' if verdict.passed else 'FAILED'}", "",
                  f"Loaded in llama.cpp and compared with the transformers model it came from on {verdict.inputs}.",
                  ""] + [f"- {'ok' if c.passed else 'FAILED'}: {c.detail}" for c in verdict.checks] + \
                 ["", f"Criteria: {verdict.criteria}. Details: verification.json.", ""]
    lines += ["## Use", "", "```sh", f"llama-cli -m {file_name} -cnv",
              f"ollama create {name} -f Modelfile && ollama run {name}", "```", "",
              f"The Modelfile's chat template is {translation.format.title}"
              + ("" if translation.exact else " (an approximation: see the comment in the Modelfile)") + ".", ""]
    return "\n".join(lines)
