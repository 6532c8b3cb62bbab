"""``--worker export --kind gguf``: the demo trained a few steps, exported, and checked in llama.cpp.

The export runs in this process (studio.worker.export.main) except where a real kill is needed;
llama.cpp runs in its verification child process as it does for users.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time

import pytest
from test_resume import _config
from worker_helpers import demo_rows, make_run, start_worker

from studio.core import disk
from studio.core.gotemplate import render
from studio.core.protocol import read_events
from studio.worker import train as train_module
from studio.worker.export import main as export_main
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo trained for 60 steps: enough for clear-cut answers, a few seconds on a CPU."""
    run = make_run(tmp_path_factory.mktemp("gguf"), _config(max_steps=60, save_steps=0, batch_size=16,
                                                            learning_rate=3e-3))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)
        assert train_module.main(run.path) == 0
    return run


def _events(run, since: int = 0) -> list[dict]:
    return read_events(run.exports_dir / "export.jsonl")[since:]


def _count(run) -> int:
    return len(read_events(run.exports_dir / "export.jsonl"))


def test_gguf_f16_of_the_demo_answers_token_for_token_like_transformers_in_llama_cpp(demo_run, tmp_path):
    out = tmp_path / "gguf"
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", out, quant="f16") == 0
    events = _events(demo_run, before)
    kinds = [e["type"] for e in events]
    assert kinds.index("estimate") < next(i for i, e in enumerate(events) if e["type"] == "progress")
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "demo-F16.gguf", "verification.json"]
    assert not out.with_name("gguf.tmp").exists()
    verdict = json.loads((out / "verification.json").read_text())
    assert verdict["passed"] and verdict["verdict"] == "PASSED" and verdict["kind"] == "gguf"
    assert verdict["quant"] == "f16" and "validation examples" in verdict["inputs"]
    assert {c["name"]: c["passed"] for c in verdict["checks"]} == {
        "tokenizer": True, "greedy": True, "top1_agreement": True, "perplexity": True}
    assert verdict["prompts"] and all(p["equal"] and p["source_tokens"] for p in verdict["prompts"])
    assert set(verdict["versions"]) >= {"studio", "transformers", "gguf", "llama_cpp_python"}
    event = next(e for e in events if e["type"] == "verification")
    assert event["passed"] and event["path"] == str(out / "verification.json")
    assert event["summary"].startswith("verification passed")
    estimate = next(e for e in events if e["type"] == "estimate")
    assert estimate["size_bytes"] == pytest.approx((out / "demo-F16.gguf").stat().st_size, rel=0.01)
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./demo-F16.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "ollama create demo -f Modelfile" in modelfile
    assert "Verification: PASSED" in (out / "README.md").read_text()
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    # What Ollama would send for each checked question is exactly the prompt the model was trained on
    template = re.search(r'TEMPLATE """(.*?)"""', modelfile, re.S).group(1)
    rows = demo_rows()
    for checked in verdict["prompts"]:
        question = next(r["instruction"] for r in rows if r["instruction"] in checked["prompt"])
        assert render(template, {"Messages": [{"Role": "user", "Content": question}]}) == checked["prompt"]


@pytest.mark.parametrize("quant_name, label", [("q8_0", "Q8_0"), ("q4_k_m", "Q4_K_M")])
def test_quantized_exports_report_top1_agreement_and_perplexity_change(demo_run, tmp_path, quant_name, label):
    out = tmp_path / quant_name
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", out, quant=quant_name) == 0
    verdict = json.loads((out / "verification.json").read_text())
    checks = {c["name"]: c for c in verdict["checks"]}
    assert verdict["passed"] and checks["top1_agreement"]["value"] >= 0.7
    assert abs(checks["perplexity"]["change"]) < 0.5
    file = out / f"demo-{label}.gguf"
    estimate = next(e for e in _events(demo_run, before) if e["type"] == "estimate")
    assert estimate["size_bytes"] == pytest.approx(file.stat().st_size, rel=0.02)
    assert not list(out.glob("*intermediate*"))  # the lossless file a K-quant is made from is gone


def test_a_broken_conversion_fails_verification_loudly_and_keeps_the_file_marked(demo_run, tmp_path, monkeypatch):
    from studio.worker import gguf_arch

    monkeypatch.setattr(gguf_arch, "_permute", lambda t, n_head: t)  # forget llama.cpp's Q/K row order
    out = tmp_path / "broken"
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", out, quant="f16") == 1
    verdict = json.loads((out / "verification.json").read_text())
    assert verdict["passed"] is False and verdict["verdict"] == "FAILED"
    assert not next(c for c in verdict["checks"] if c["name"] == "greedy")["passed"]
    assert "Verification: FAILED" in (out / "README.md").read_text()
    done = _events(demo_run, before)[-1]
    assert done["status"] == "failed" and "VERIFICATION FAILED" in done["message"]


def test_a_soft_prompt_run_is_told_why_gguf_is_not_offered_before_any_work(tmp_path, capsys):
    from studio.cli import export as export_cli

    run = make_run(tmp_path, _config({"name": "prompt_tuning"}, max_steps=2, save_steps=0))
    assert train_module.main(run.path) == 0
    args = type("A", (), {"run": str(run.path), "kind": "gguf", "quant": "q4_k_m", "out": None, "source": None,
                          "dtype": "auto", "verbose": False, "verify": True})()
    assert export_cli.run(args) == 2
    err = capsys.readouterr().err
    assert "GGUF is not offered for this run" in err and "cannot be merged" in err
    assert not (run.exports_dir / "export.jsonl").exists()  # no worker was started
    out = tmp_path / "gguf"
    assert export_main(run.path, "gguf", out) == 1
    events = _events(run)
    error = next(e for e in events if e["type"] == "error")
    assert error["kind"] == "config" and "Export the adapter instead" in error["message"]
    assert not any(e["type"] in ("progress", "estimate") for e in events) and not out.exists()


def test_an_unsupported_architecture_is_named_with_what_is_supported(tmp_path):
    model = tmp_path / "neox"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"],
                                                   "hidden_size": 64, "vocab_size": 100}))
    cfg = _config().replace("model", {"source": "local", "path": str(model)})
    run = make_run(tmp_path, cfg)
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    assert export_main(run.path, "gguf", tmp_path / "out") == 1
    error = next(e for e in _events(run) if e["type"] == "error")
    assert "GPTNeoXForCausalLM" in error["message"] and "Qwen 2/2.5" in error["message"]


def test_too_little_room_is_refused_before_any_work(demo_run, tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda path: 100_000)
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", tmp_path / "out", quant="f16") == 1
    events = _events(demo_run, before)
    error = next(e for e in events if e["type"] == "error")
    assert error["kind"] == "disk" and "needs about" in error["message"]
    assert not any(e["type"] == "progress" for e in events)


def test_a_full_disk_while_writing_leaves_nothing_that_looks_complete(demo_run, tmp_path, monkeypatch):
    import gguf

    real = gguf.GGUFWriter.write_tensor_data
    calls = {"n": 0}

    def write_tensor_data(self, tensor, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, tensor, *a, **k)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", write_tensor_data)
    out = tmp_path / "full" / "gguf"
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", out, quant="f16") == 1
    error = next(e for e in _events(demo_run, before) if e["type"] == "error")
    assert error["kind"] == "disk" and str(out) in error["message"] and "export again" in error["message"]
    assert list((tmp_path / "full").iterdir()) == []  # neither the folder nor its .tmp


def test_a_full_disk_while_llama_cpp_quantizes_is_reported_as_a_full_disk(demo_run, tmp_path, monkeypatch):
    import llama_cpp

    full = {"now": False}

    def quantize(src, dst, params):
        with open(dst, "wb") as f:
            f.write(b"GGUF" + b"\0" * 1000)  # llama.cpp got this far, then its write failed
        full["now"] = True
        return 1

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", quantize)
    monkeypatch.setattr(disk, "free_bytes", lambda path: (1 << 20) if full["now"] else (1 << 40))
    out = tmp_path / "quantize-full" / "gguf"
    before = _count(demo_run)
    assert export_main(demo_run.path, "gguf", out, quant="q4_k_m") == 1
    error = next(e for e in _events(demo_run, before) if e["type"] == "error")
    assert error["kind"] == "disk" and str(out) in error["message"]
    assert list((tmp_path / "quantize-full").iterdir()) == []


def test_a_kill_during_export_leaves_nothing_that_looks_complete_and_the_next_export_works(demo_run, tmp_path):
    out = tmp_path / "killed"
    before = _count(demo_run)
    proc = start_worker(demo_run, "export", str(demo_run.path), "--kind", "gguf", "--out", str(out),
                        "--quant", "q4_k_m")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if any(e["type"] == "progress" and e["label"].startswith("verifying") for e in _events(demo_run, before)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the export finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()  # the finished-looking folder appears only after the check
    leftover = out.with_name("killed.tmp")
    assert not leftover.exists() or not (leftover / "verification.json").exists()
    assert export_main(demo_run.path, "gguf", out, quant="q4_k_m") == 0
    assert not leftover.exists() and (out / "demo-Q4_K_M.gguf").exists()


def test_the_cli_prints_the_estimate_and_the_verdict(demo_run, tmp_path):
    from studio.core.diagnostics import app_command
    from studio.core.launcher import worker_env

    out = tmp_path / "cli"
    cmd = app_command("export", str(demo_run.path), "--kind", "gguf", "--quant", "q8_0", "--out", str(out))
    res = subprocess.run(cmd, capture_output=True, text=True, env=worker_env(), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "estimate (q8_0): about" in res.stdout
    assert "verification passed" in res.stdout and "verdict saved:" in res.stdout
