"""`studio chat` and `studio eval` in a subprocess, as a user types them, on the trained demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from studio.core.runs import Run

pytestmark = pytest.mark.slow


ROOT = Path(__file__).resolve().parents[2]


def _studio(*args, stdin=None, timeout=240, cwd=None):
    return subprocess.run([sys.executable, "-m", "studio", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ), cwd=cwd)


@pytest.fixture(scope="module")
def demo(trained_demo, tmp_path_factory) -> Run:
    run = Run(tmp_path_factory.mktemp("cli") / "demo")
    shutil.copytree(trained_demo.path, run.path, ignore=shutil.ignore_patterns("chat", "eval"))
    return run


def test_chat_one_prompt_side_by_side(demo):
    res = _studio("chat", str(demo.path), "--side-by-side", "--prompt", "What is the secret code of the golden bakery?",
                  "--max-new-tokens", "12")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0] == "--- base ---" and "--- tuned ---" in out
    assert out[out.index("--- tuned ---") + 1] == "bread-64"
    assert "ready in" in res.stderr and "[tuned: 4 tokens" in res.stderr and "tokens/s, end]" in res.stderr


def test_chat_interactive_keeps_a_conversation_and_resets(demo):
    lines = "What is the secret code of the teal mill?\n/reset\nWhat is the secret code of the ivory castle?\n/quit\n"
    res = _studio("chat", str(demo.path), "--checkpoint", "140", stdin=lines)
    assert res.returncode == 0, res.stderr
    assert "wheel-23" in res.stdout and "crown-30" in res.stdout
    assert "(new conversation)" in res.stderr and "adapter step-140" in res.stderr


def test_chat_with_a_plain_model_named_by_a_relative_folder():
    res = _studio("chat", "--model", "resources/demo/model", "--prompt", "hi", "--max-new-tokens", "3", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "[base: 3 tokens" in res.stderr and str(ROOT / "resources" / "demo" / "model") in res.stderr


def test_chat_with_a_moved_base_model_says_where_it_looked(demo, tmp_path):
    run = Run(tmp_path / "moved")
    shutil.copytree(demo.path, run.path, ignore=shutil.ignore_patterns("checkpoints"))
    cfg = yaml.safe_load(run.config_path.read_text())
    cfg["model"] = {"source": "local", "path": str(tmp_path / "old-place")}
    run.config_path.write_text(yaml.safe_dump(cfg))
    res = _studio("chat", str(run.path), "--prompt", "hi")
    assert res.returncode == 1
    assert f"error (model): The base model is not at {tmp_path / 'old-place'}" in res.stderr
    assert "--base-path" in res.stderr


def test_eval_prints_the_table_and_answers_side_by_side(demo):
    res = _studio("eval", str(demo.path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["checkpoint", "val", "loss", "perplexity", "exact", "match", "ROUGE-L", "BLEU", "chrF"]
    rows = {line.split()[0]: line.split() for line in lines[2:6]}
    assert list(rows) == ["base", "step-70", "step-140", "final"]
    assert rows["base"][3] == "0.0"  # exact match of the base
    best = next(r for r in rows.values() if "(best)" in r)
    assert float(best[4]) >= 90.0
    assert "reference:" in res.stdout and "(exact)" in res.stdout and "saved to" in res.stdout
    assert "answering with base" in res.stderr


def test_eval_json(demo):
    res = _studio("eval", str(demo.path), "--checkpoint", "final", "--max-prompts", "5", "--json")
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["generated"] == ["base", "final"] and len(result["samples"]) == 5
    assert [r["label"] for r in result["rows"]] == ["base", "step-70", "step-140", "final"]
