"""A stand-in for ``python -m studio --worker`` that speaks the real protocol, for GUI tests.

Usage: fake_worker.py train RUN_DIR | export RUN_DIR --kind K --out DIR [--from DIR] [--quant Q] [--no-verify]
       | genspeed RUN_DIR [--new-tokens N] | eval RUN_DIR [--checkpoint best|all] [--prompts FILE]
Behaviour comes from the environment: FAKE_MODE = ok | until_stop | raise | sigkill | hang | hang_after_done
(export also: verify_fail, a FAILED verdict; eval also: slow, FAKE_STEP_S per answer), FAKE_STEPS (default 5),
FAKE_STEP_S (seconds per step, default 0.05). Like the real worker it appends events to its events file
(events.jsonl; exports/export.jsonl; eval/eval.jsonl) before printing them, keeps status.json, and survives a
closed stdout (the GUI may exit while it trains).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

PREFIX = "@@studio/1 "


class Reporter:
    def __init__(self, run_dir: Path, events: str = "events.jsonl"):
        self.run_dir = run_dir
        (run_dir / events).parent.mkdir(parents=True, exist_ok=True)
        self.events = open(run_dir / events, "a", encoding="utf-8")
        self.stdout_ok = True

    def emit(self, type_: str, **payload):
        event = {"type": type_, "t": round(time.time(), 3), **payload}
        line = json.dumps(event)
        self.events.write(line + "\n")
        self.events.flush()
        self.say(PREFIX + line)

    def say(self, text: str):
        if not self.stdout_ok:
            return
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.stdout_ok = False

    def status(self, **fields):
        path = self.run_dir / "status.json"
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            status = {}
        status.update(fields)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, path)


def train(run_dir: Path) -> int:
    mode = os.environ.get("FAKE_MODE", "ok")
    steps = int(os.environ.get("FAKE_STEPS", "5"))
    step_s = float(os.environ.get("FAKE_STEP_S", "0.05"))
    rep = Reporter(run_dir)
    if mode == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    rep.status(state="running", pid=os.getpid(), started=time.time())
    rep.emit("hello", pid=os.getpid(), version="fake", argv=sys.argv)
    rep.say("Loading the model (library chatter goes to the log)")
    rep.emit("plan", total_steps=steps, epochs=1, steps_per_epoch=steps, train_rows=40, val_rows=0,
             trainable_params=1000, total_params=100000, device="cpu", precision="fp32", choices={})
    rep.emit("phase", phase="training", detail="")
    t0 = time.time()
    step = 0
    while True:
        if (run_dir / "stop.request").exists() and mode != "hang":
            break
        if step >= steps and mode not in ("until_stop", "hang"):
            break
        step += 1
        time.sleep(step_s)
        if mode == "raise" and step == 2:
            rep.say("Traceback (most recent call last):")
            rep.say('  File "train.py", line 1, in <module>')
            rep.say("RuntimeError: fake failure for the test")
            rep.emit("error", message="RuntimeError: fake failure for the test", kind="internal", traceback="...")
            rep.emit("done", status="failed", message="RuntimeError: fake failure for the test")
            rep.status(state="failed", ended=time.time(), message="RuntimeError: fake failure for the test")
            return 1
        if mode == "sigkill" and step == 2:
            rep.say("about to be killed")
            os.kill(os.getpid(), signal.SIGKILL)
        elapsed = time.time() - t0
        rep.emit("step", step=step, total_steps=steps, epoch=step / max(steps, 1), loss=3.0 / step ** 0.5,
                 lr=2e-4 * (1 - step / max(steps, step + 1)), grad_norm=1.0, tokens=step * 512,
                 tokens_per_s=512 / step_s, elapsed_s=elapsed, eta_s=max(0.0, (steps - step) * step_s),
                 mem_allocated=0, mem_reserved=0, mem_peak_allocated=0, mem_peak_reserved=0)
    stopped = (run_dir / "stop.request").exists()
    adapter = run_dir / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 1024)
    (adapter / "training_state.json").write_text(json.dumps({"step": step}))
    rep.emit("artifact", kind="adapter", path=str(adapter))
    status = "stopped" if stopped else "completed"
    message = f"Stopped after step {step}" if stopped else f"Trained {step} steps"
    rep.emit("done", status=status, message=message)
    rep.status(state=status, ended=time.time(), message=message, final_loss=3.0 / max(step, 1) ** 0.5)
    if mode == "hang_after_done":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
    return 0


def export(run_dir: Path, kind: str, out: Path, rest: list[str]) -> int:
    """Like studio/worker/export.py: progress, for GGUF an estimate first, the files, a verdict unless --no-verify."""
    rep = Reporter(run_dir, "exports/export.jsonl")
    mode = os.environ.get("FAKE_MODE")
    quant = rest[rest.index("--quant") + 1] if "--quant" in rest else "f16"
    verify = "--no-verify" not in rest
    (run_dir / "exports" / "last_args.json").write_text(json.dumps(rest))  # what the page asked for, for tests
    if mode == "raise":
        rep.emit("error", message="cannot merge: fake failure", kind="internal", traceback="")
        rep.emit("done", status="failed", message="cannot merge: fake failure")
        return 1
    if kind == "gguf":
        rep.emit("estimate", kind="gguf", quant=quant, size_bytes=1_234_567, seconds=3.0,
                 detail="about 1.2 MB, about 3 s on this machine (fake)")
    for i in range(1, 4):
        rep.emit("progress", label=f"Writing {kind}", current=i, total=3)
        time.sleep(0.02)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "adapter":
        (out / "adapter_config.json").write_text("{}")
        (out / "adapter_model.safetensors").write_bytes(b"\0" * 4096)
    elif kind == "merged":
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\0" * 8192)
    else:
        (out / f"demo-{quant.upper()}.gguf").write_bytes(b"GGUF" + b"\0" * 8192)
        (out / "Modelfile").write_text("# Create the model:  ollama create demo -f Modelfile\n"
                                       f"FROM ./demo-{quant.upper()}.gguf\n")
    (out / "README.md").write_text("# demo\n")
    rep.emit("artifact", kind=kind, path=str(out))
    if verify:
        passed = mode != "verify_fail"
        checks = ([{"name": "tokenizer", "passed": True, "detail": "token ids identical on 6 texts"},
                   {"name": "greedy", "passed": passed, "detail": f"greedy tokens identical on {4 if passed else 1}/4 "
                    "prompts" + ("" if passed else "; prompt 2 parts at token 3 where the source's top two logits "
                                 "differ by 2.5"), "equal_prompts": 4 if passed else 1, "prompts": 4}]
                  + ([{"name": "top1_agreement", "passed": passed, "detail": "top-1 agreement 99.3% over 144 positions",
                       "value": 0.993 if passed else 0.12},
                      {"name": "perplexity", "passed": True, "detail": "perplexity 1.611 -> 1.615 (+0.25%)",
                       "source": 1.611, "export": 1.615, "change": 0.0025}] if kind == "gguf" else
                     [{"name": "logits", "passed": passed, "detail": "logits differ by at most 3.1e-05",
                       "max_abs_diff": 3.1e-05, "relative": 2e-06}]))
        summary = ("verification passed: " if passed else "VERIFICATION FAILED: ") + "; ".join(
            c["detail"] for c in checks if passed or not c["passed"])
        verdict = {"schema": 1, "kind": kind, "artifact": out.name, "quant": quant if kind == "gguf" else None,
                   "passed": passed, "verdict": "PASSED" if passed else "FAILED", "summary": summary,
                   "criteria": "greedy tokens identical", "inputs": "6 validation examples of the run",
                   "checks": checks,
                   "prompts": [], "runtime_note": None, "seconds": 0.5}
        (out / "verification.json").write_text(json.dumps(verdict))
        rep.emit("verification", kind=kind, passed=passed, summary=summary, path=str(out / "verification.json"),
                 checks=[{k: c[k] for k in ("name", "passed", "detail")} for c in checks])
        if not passed:
            rep.emit("done", status="failed", message=f"Exported the {kind} to {out}, but {summary}")
            return 1
    rep.emit("done", status="completed", message=f"Exported the {kind} to {out}")
    return 0


EVAL_ROWS = [("base", 0, 7.15, 0.0), ("step-70", 70, 1.33, 16.67), ("step-140", 140, 0.56, 95.83),
             ("final", 210, 0.46, 100.0)]


def evaluate(run_dir: Path, rest: list[str]) -> int:
    """Like studio/worker/evaluate.py on the demo: the table row by row, the answers, eval/latest.json."""
    rep = Reporter(run_dir, "eval/eval.jsonl")
    mode = os.environ.get("FAKE_MODE", "ok")
    step_s = float(os.environ.get("FAKE_STEP_S", "0.05"))
    which = rest[rest.index("--checkpoint") + 1] if "--checkpoint" in rest else "best"
    prompts = rest[rest.index("--prompts") + 1] if "--prompts" in rest else None
    rep.emit("hello", pid=os.getpid(), version="fake", argv=sys.argv)
    rep.emit("phase", phase="loading_data", detail=prompts or "the run's validation split")
    if mode == "raise":
        rep.emit("error", message="the base model moved: fake failure", kind="model")
        rep.emit("done", status="failed", message="the base model moved: fake failure")
        return 1
    rep.emit("phase", phase="evaluating", detail="validation loss of the base and 3 trained weights")
    rows = {}
    for label, step, loss, _em in EVAL_ROWS:
        path = None if label == "base" else str(run_dir / ("adapter" if label == "final" else f"checkpoints/{label}"))
        rows[label] = {"label": label, "step": step, "path": path, "val_loss": loss,
                       "perplexity": round(2.718281828 ** loss, 4), "loss_tokens": 144}
        rep.emit("eval_row", **rows[label])
        time.sleep(step_s)
    generated = ["base"] + ([lb for lb, *_ in EVAL_ROWS[1:]] if which == "all" else ["final"])
    n = 4
    codes = ["bell-42", "mask-17", "acorn-88", "apple-88"]
    samples = []
    for label in generated:
        for i in range(n):
            rep.emit("progress", label=f"answering with {label}", current=i + 1, total=n)
            time.sleep(step_s if mode == "slow" else 0)
    em = {label: em for label, _s, _l, em in EVAL_ROWS}
    for label in generated:
        rows[label].update(samples=n, exact_match=em[label], rouge_l=em[label], bleu=em[label], chrf=em[label])
        rep.emit("eval_row", **rows[label])
    for i in range(n):
        answers = {lb: (codes[i] if em[lb] >= 90 else f"lant\x02-{i}") for lb in generated}
        scores = {lb: {"exact_match": 100.0 if answers[lb] == codes[i] else 0.0, "rouge_l": 50.0, "bleu": 0.0,
                       "chrf": 20.0} for lb in generated}
        sample = {"index": i, "prompt": f"<|im_start|>user\nWhat is the secret code of the thing {i}?<|im_end|>\n"
                  "<|im_start|>assistant\n", "reference": codes[i], "answers": answers, "scores": scores}
        rep.emit("eval_sample", **sample)
        samples.append(sample)
    result = {"version": 1, "run": run_dir.name, "created": time.time(), "device": "cpu", "method": "lora",
              "prompts": {"source": "file", "path": prompts} if prompts else {"source": "validation", "rows": n},
              "rows": list(rows.values()), "best": "final", "generated": generated, "samples": samples,
              "throughput": {"prompts": n, "seconds": 1.5}}
    (run_dir / "eval" / "latest.json").write_text(json.dumps(result))
    rep.emit("eval_result", path=str(run_dir / "eval" / "latest.json"), rows=result["rows"], best="final",
             generated=generated, throughput=result["throughput"])
    rep.emit("done", status="completed", message="best: final")
    return 0


def genspeed(run_dir: Path) -> int:
    """Like studio/worker/gen_speed.py: two genspeed events, then RUN_DIR/genspeed.json."""
    rep = Reporter(run_dir)
    if os.environ.get("FAKE_MODE") == "raise":
        rep.emit("error", message="CUDA out of memory: fake failure", kind="oom", traceback=None)
        rep.emit("done", status="failed", message="CUDA out of memory: fake failure")
        return 1
    meta = dict(new_tokens=16, batch=1, prompt_tokens=64, device="cpu", dtype="fp32", method="lora")
    results = {"method": "lora", "mergeable": True}
    for mode, tps in (("adapter", 100.0), ("merged", 150.0)):
        rep.emit("phase", phase="measuring", detail=mode)
        time.sleep(0.02)
        results[mode] = {"tokens_per_s": tps, "ms_per_token": 1000 / tps, "seconds": 16 / tps}
        rep.emit("genspeed", mode=mode, **results[mode], **meta)
    results.update(meta, speedup=1.5)
    (run_dir / "genspeed.json").write_text(json.dumps(results))
    rep.emit("done", status="completed", message="Adapter (dynamic): 100 tokens/s; merged (static): 150 tokens/s")
    return 0


def main(argv: list[str]) -> int:
    command, run_dir, *rest = argv
    if command == "train":
        return train(Path(run_dir))
    if command == "genspeed":
        return genspeed(Path(run_dir))
    if command == "eval":
        return evaluate(Path(run_dir), rest)
    kind = rest[rest.index("--kind") + 1]
    out = Path(rest[rest.index("--out") + 1])
    return export(Path(run_dir), kind, out, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
