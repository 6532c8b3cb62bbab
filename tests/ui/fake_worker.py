"""A stand-in for ``python -m studio --worker`` that speaks the real protocol, for GUI tests.

Usage: fake_worker.py train RUN_DIR | export RUN_DIR --kind K --out DIR | genspeed RUN_DIR [--new-tokens N]
Behaviour comes from the environment: FAKE_MODE = ok | until_stop | raise | sigkill | hang | hang_after_done,
FAKE_STEPS (default 5), FAKE_STEP_S (seconds per step, default 0.05). Like the real worker it
appends events to events.jsonl before printing them, keeps status.json, and survives a closed
stdout (the GUI may exit while it trains).
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
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.events = open(run_dir / "events.jsonl", "a", encoding="utf-8")
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
    rep.emit("artifact", kind="adapter", path=str(adapter))
    status = "stopped" if stopped else "completed"
    message = f"Stopped after step {step}" if stopped else f"Trained {step} steps"
    rep.emit("done", status=status, message=message)
    rep.status(state=status, ended=time.time(), message=message, final_loss=3.0 / max(step, 1) ** 0.5)
    if mode == "hang_after_done":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
    return 0


def export(run_dir: Path, kind: str, out: Path) -> int:
    rep = Reporter(run_dir)
    if os.environ.get("FAKE_MODE") == "raise":
        rep.emit("error", message="cannot merge: fake failure", kind="internal", traceback="")
        rep.emit("done", status="failed", message="cannot merge: fake failure")
        return 1
    for i in range(1, 4):
        rep.emit("progress", label=f"Writing {kind}", current=i, total=3)
        time.sleep(0.02)
    out.mkdir(parents=True, exist_ok=True)
    (out / ("adapter_config.json" if kind == "adapter" else "config.json")).write_text("{}")
    rep.emit("artifact", kind=kind, path=str(out))
    rep.emit("done", status="completed", message=f"Exported the {kind} to {out}")
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
    kind = rest[rest.index("--kind") + 1]
    out = Path(rest[rest.index("--out") + 1])
    return export(Path(run_dir), kind, out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
