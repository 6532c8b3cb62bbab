"""studio.core.exports: export sources, folders, listing, verdict figures and the Ollama command, from files."""

from __future__ import annotations

import json

from studio.core.config import demo_config
from studio.core.exports import (default_out, default_repo_name, export_sources, list_exports, ollama_command,
                                 verdict_figures)
from studio.core.runs import RunStore


def _run(tmp_path):
    run = RunStore(tmp_path / "runs").create(demo_config())
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_model.safetensors").write_bytes(b"x")
    (run.adapter_dir / "training_state.json").write_text(json.dumps({"step": 210}))
    for step in (70, 140):
        ckpt = run.path / "checkpoints" / f"step-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "resume.json").write_text(json.dumps({"step": step}))
        (ckpt / "trainer_state.pt").write_bytes(b"x")
    (run.path / "checkpoints" / "step-210.tmp").mkdir()  # a save cut short is never offered
    return run


def test_sources_are_the_final_weights_then_the_checkpoints_newest_first(tmp_path):
    run = _run(tmp_path)
    sources = export_sources(run)
    assert [(s.label, s.step) for s in sources] == [("final", 210), ("step-140", 140), ("step-70", 70)]
    assert sources[0].title == "Final weights (step 210)" and sources[1].title == "Checkpoint at step 140"
    assert sources[1].path == run.path / "checkpoints" / "step-140"


def test_default_folder_names_the_kind_type_and_checkpoint_and_never_an_earlier_export(tmp_path):
    run = _run(tmp_path)
    assert default_out(run, "adapter") == run.exports_dir / "adapter"
    assert default_out(run, "gguf", "q4_k_m") == run.exports_dir / "gguf-q4_k_m"
    assert default_out(run, "merged", source=export_sources(run)[1]) == run.exports_dir / "merged-step-140"
    (run.exports_dir / "adapter").mkdir(parents=True)
    (run.exports_dir / "adapter" / "f").write_text("x")
    assert default_out(run, "adapter") == run.exports_dir / "adapter-2"


def test_exports_are_listed_with_their_kind_and_verdict_newest_first(tmp_path):
    run = _run(tmp_path)
    gguf = run.exports_dir / "gguf-f16"
    gguf.mkdir(parents=True)
    (gguf / "demo-F16.gguf").write_bytes(b"GGUF" * 10)
    (gguf / "Modelfile").write_text("# Create the model:  ollama create my-run -f Modelfile\nFROM ./demo-F16.gguf\n")
    (gguf / "verification.json").write_text(json.dumps({"passed": True, "checks": []}))
    (run.exports_dir / "adapter.tmp").mkdir()  # an export in progress
    (run.exports_dir / "adapter.tmp" / "x").write_text("x")
    exports = list_exports(run)
    assert [(e.folder.name, e.kind, e.verdict_text) for e in exports] == [("gguf-f16", "gguf", "verified: PASSED")]
    assert ollama_command(gguf) == f"cd {gguf} && ollama create my-run -f Modelfile"
    assert ollama_command(tmp_path) is None


def test_verdict_figures_put_the_numbers_first():
    verdict = {"checks": [
        {"name": "tokenizer", "passed": True, "detail": "token ids identical on 6 texts"},
        {"name": "loads", "passed": False, "detail": "llama.cpp cannot run the file"},
        {"name": "perplexity", "passed": True, "detail": "...", "change": -0.00001},
        {"name": "greedy", "passed": False, "detail": "greedy tokens identical on 3/4 prompts", "equal_prompts": 3,
         "prompts": 4},
        {"name": "top1_agreement", "passed": True, "detail": "...", "value": 0.986},
        {"name": "logits", "passed": True, "detail": "...", "max_abs_diff": 3.1e-05}]}
    figures = [(f.title, f.value, f.passed) for f in verdict_figures(verdict)]
    assert figures == [("Greedy tokens identical", "3/4 prompts", False), ("Top-1 agreement", "98.6%", True),
                       ("Perplexity change", "-0.00%", True), ("Max logit difference", "3.1e-05", True),
                       ("Tokenizer", "same token ids", True), ("Loads", "FAILED", False)]


def test_repo_names_come_from_the_run_name():
    assert default_repo_name("secret codes!", "adapter") == "secret-codes"
    assert default_repo_name("demo", "gguf") == "demo-GGUF" and default_repo_name("", "merged") == "studio-model-merged"
