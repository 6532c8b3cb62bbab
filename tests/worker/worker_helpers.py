"""Helpers for tests that run the real worker process: run folders, launching, waiting, generating."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from studio.core.config import RunConfig, demo_config
from studio.core.runs import Run


def make_run(root: Path, cfg: Optional[RunConfig] = None, name: str = "run") -> Run:
    path = Path(root) / name
    path.mkdir(parents=True)
    (cfg or demo_config()).save(path / "config.yaml")
    return Run(path)


def long_demo_config(**training: Any) -> RunConfig:
    """The demo with enough steps that a test can stop or kill it mid-run."""
    cfg = demo_config()
    settings = {"max_steps": 100_000, "logging_steps": 1, "eval_steps": 0, **training}
    for key, value in settings.items():
        cfg = cfg.replace(f"training.{key}", value)
    return cfg


def start_worker(run: Run, *args: str, stdout: Any = subprocess.DEVNULL) -> subprocess.Popen:
    from studio.core.diagnostics import app_command
    from studio.core.launcher import worker_env

    cmd = app_command("--worker", *(args or ("train", str(run.path))))
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            env=worker_env(), cwd=str(run.path), start_new_session=True)


def wait_for_event(run: Run, type_: str, timeout: float = 60.0, proc: Optional[subprocess.Popen] = None) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in run.events():
            if e["type"] == type_:
                return e
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"worker exited ({proc.returncode}) before a {type_!r} event:\n{run.log_tail(30)}")
        time.sleep(0.1)
    raise AssertionError(f"no {type_!r} event within {timeout}s:\n{run.log_tail(30)}")


def events_of(run: Run, type_: str) -> list[dict]:
    return [e for e in run.events() if e["type"] == type_]


def demo_rows() -> list[dict[str, str]]:
    from studio.core.paths import demo_dataset_path

    return [json.loads(line) for line in demo_dataset_path().read_text(encoding="utf-8").splitlines()]


def greedy_answers(model: Any, tokenizer: Any, questions: list[str], max_new_tokens: int = 8,
                   batch_size: int = 64) -> list[str]:
    """Greedy completions of chat prompts, batched with left padding."""
    import torch

    tokenizer.padding_side = "left"
    out: list[str] = []
    model.eval()
    for k in range(0, len(questions), batch_size):
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                 tokenize=False) for q in questions[k:k + batch_size]]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in gen[:, enc["input_ids"].shape[1]:]:
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return out


class Recorder:
    """A reporter that keeps the events in a list (TrainLoop's reporter interface)."""

    def __init__(self):
        self.events = []

    def emit(self, type_, **payload):
        self.events.append({"type": type_, **payload})

    def log(self, line):
        pass

    def stop_requested(self):
        return False

    def stop_reason(self):
        return ""
