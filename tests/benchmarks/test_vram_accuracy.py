"""The VRAM benchmark trains the workload each row names, and its grid spans what it claims.

The first H100 run measured ~1.1 GiB for every Qwen2.5-0.5B row: the worker read the benchmark's
word-level tokenizer as Qwen2's byte-level BPE and trained on one token per row. The q05 test here
runs that path on the CPU with the real 151,936-word vocabulary and a tiny width.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "vram_accuracy.py"


@pytest.fixture(scope="module")
def va():
    # The script runs with its own folder on the path (its sibling modules, e.g. wordlevel.py), as here.
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("vram_accuracy", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _steps(per_step: list[int]) -> list[dict]:
    total, out = 0, []
    for i, n in enumerate(per_step, 1):
        total += n
        out.append({"type": "step", "step": i, "tokens": total})
    return out


def test_token_check_flags_rows_that_trained_other_lengths(va):
    assert va.token_check(_steps([8192] * 4), 8, 1024, False) == ""
    assert va.token_check(_steps([8] * 4), 8, 1024, False) == "invalid: trained 8 tokens/step, wanted 8192 (8 x 1024)"
    assert va.token_check(_steps([8192 - 200] * 4), 8, 1024, True) == ""  # padded rows: seq - 0..96 each
    assert va.token_check(_steps([100] * 4), 8, 1024, True).startswith("invalid: trained 100 tokens/step")
    assert va.token_check([], 8, 1024, False).startswith("invalid")


def test_grid30_spans_families_methods_and_shapes(va):
    specs = va.GRID["grid30"]
    ids = [va.config_id(s) for s in specs]
    assert len(specs) >= 30 and len(set(ids)) == len(ids)
    facts = {k: va.model_facts(k) for k in {s[0] for s in specs}}
    families = {f.model_type for f in facts.values()}
    assert len(families) >= 4
    assert any(f.vocab_size >= 250_000 for f in facts.values())
    assert any(not f.tie_word_embeddings for f in facts.values())
    assert {"lora", "qlora", "dora", "ia3", "prompt_tuning", "galore", "full"} <= {s[1] for s in specs}
    assert {"on", "off"} <= {s[4] for s in specs} and {"standard", "chunked"} <= {s[5] for s in specs}
    assert min(s[3] for s in specs) == 256 and max(s[3] for s in specs) == 8192
    assert min(s[2] for s in specs) == 1 and max(s[2] for s in specs) == 16
    for half in ("grid30a", "grid30b"):  # each half builds few models, each model's rows together
        keys = [s[0] for s in va.GRID[half]]
        assert len(set(keys)) <= 2 and keys == sorted(keys, key=keys.index)
    assert set(ids) <= set(va.all_specs())
    listed = subprocess.run([sys.executable, str(SCRIPT), "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "grid30b:" in listed.stdout and ids[-1] in listed.stdout


def test_q05_shaped_run_trains_batch_times_seq_tokens(va, tmp_path, monkeypatch):
    # Real vocabulary and tokenizer build, tiny width: the same data, tokenizer and worker path.
    monkeypatch.setitem(va.SHAPES, "q05", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                           "num_attention_heads": 2, "num_key_value_heads": 1})
    model_dir = va.build_model(tmp_path, "q05")  # raises if the worker would read other tokens
    batch, seq = 2, 64
    data = va.write_data(tmp_path, "q05", seq, rows=16, padded=False)
    cfg = va.run_config(("q05", "lora", batch, seq, "off", "chunked", False, {}), model_dir, data, tmp_path)
    cfg["training"].update(device="cpu", precision="fp32", max_steps=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, str(SCRIPT), "child", str(run_dir)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines() if x.strip()]
    assert [e["tokens"] for e in events if e["type"] == "step"] == [batch * seq, 2 * batch * seq]
    assert va.token_check(events, batch, seq, False) == ""


def test_tokens_per_step_reads_the_running_count(va):
    assert va.tokens_per_step(_steps([10, 20, 30])) == [10, 20, 30]
    events = [{"type": "step", "step": 2, "tokens": 40}, {"type": "step", "step": 4, "tokens": 100}]
    assert va.tokens_per_step(events) == [20, 30]  # logged every 2 steps: the mean of each window
