"""The model card (studio.core.model_card) and its curves image (studio.core.curves_png), from run folders
written here by hand: no torch, no training."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
import yaml

from studio.core.config import demo_config
from studio.core.curves_png import TRAIN, VALIDATION, loss_curves_png
from studio.core.model_card import CURVES, README, build_card
from studio.core.runs import Run

PLAN = {"type": "plan", "t": 1.0, "total_steps": 10, "epochs": 2.0, "steps_per_epoch": 5, "train_rows": 216,
        "val_rows": 24, "trainable_params": 32768, "total_params": 140608, "device": "cuda", "precision": "bf16",
        "data": {"format": "alpaca", "evidence": "240 of 240 rows have instruction/output", "rows": 240,
                 "skipped": 0, "duplicates": 3, "train_rows": 216, "val_rows": 24,
                 "stats": {"template": "chatml", "train_tokens": 5184, "loss_tokens": 1296}}}


def _run(tmp_path, cfg=None, name="run"):
    path = tmp_path / name
    path.mkdir()
    (cfg or demo_config()).save(path / "config.yaml")
    run = Run(path)
    run.write_status(state="completed", final_loss=0.4321, val_loss=0.5678, steps=10, total_steps=10,
                     ended=1_780_000_000)
    events = [PLAN] + [{"type": "step", "step": s, "loss": 3.0 / s} for s in range(1, 11)] + \
        [{"type": "eval", "step": s, "val_loss": 3.2 / s} for s in (5, 10)]
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---", 2)[1])


def _adapter_folder(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_adapter_card_has_metadata_method_training_data_and_curves(tmp_path):
    card = build_card(_run(tmp_path), "adapter", folder=_adapter_folder(tmp_path), repo_id="alice/demo-lora")
    text = card.text
    meta = _front_matter(text)
    assert meta["library_name"] == "peft" and meta["tags"] == ["studio", "lora"]
    assert meta["pipeline_tag"] == "text-generation" and "base_model" not in meta, "the demo has no hub id"
    for expected in ("## Training", "LoRA: Rank 16", "Learning rate", "bf16 on cuda", "0.4321", "0.5678",
                     "## Data", "the studio's demo dataset", "240 read: 216 for training, 24 for validation",
                     "3 duplicates dropped", "chatml", "5,184 training tokens", f"]({CURVES})",
                     'PeftModel.from_pretrained(base, "alice/demo-lora")'):
        assert expected in text, expected
    assert "## Evaluation" not in text and "## Verification" not in text, "no such files: no such sections"
    assert card.files[CURVES].startswith(b"\x89PNG\r\n\x1a\n")


def test_a_local_base_from_the_hf_cache_gives_base_model_and_license(tmp_path):
    snapshot = tmp_path / "hub" / "models--acme--tiny-7b" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / README).write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    cfg = demo_config().replace("model", {"source": "local", "path": str(snapshot)})
    cfg = cfg.replace("data", {"source": "file", "path": "/home/someone/secret-project/tickets.jsonl"})
    text = build_card(_run(tmp_path, cfg), "merged", folder=None).text
    meta = _front_matter(text)
    assert meta["base_model"] == "acme/tiny-7b" and meta["license"] == "apache-2.0"
    assert meta["library_name"] == "transformers"
    assert "`tickets.jsonl` (a local file)" in text
    assert "secret-project" not in text and str(tmp_path) not in text, "a card may be published: no local folders"
    assert 'AutoModelForCausalLM.from_pretrained("path/to/this/folder")' in text


def test_evaluation_and_verification_are_shown_when_the_files_exist(tmp_path):
    run = _run(tmp_path)
    (run.path / "eval").mkdir()
    (run.path / "eval" / "latest.json").write_text(json.dumps(
        {"examples": 50, "metrics": {"bleu": {"base": 10.5, "tuned": 31.25}, "exact_match": 0.42, "note": "x"}}))
    folder = _adapter_folder(tmp_path)
    (folder / "verification.json").write_text(json.dumps({"passed": True, "message": "answers match the run"}))
    text = build_card(run, "adapter", folder=folder).text
    assert "## Evaluation" in text and "| metric | base | tuned | value |" in text
    assert "| bleu | 10.5 | 31.25 |  |" in text and "| exact_match |  |  | 0.42 |" in text and "On 50 examples." in text
    assert "## Verification" in text and "**passed**: answers match the run" in text


def test_the_eval_workers_result_and_the_exports_verdict_are_shown(tmp_path):
    run = _run(tmp_path)
    (run.path / "eval").mkdir()
    rows = [{"label": "base", "step": 0, "val_loss": 6.2, "perplexity": 492.7, "exact_match": 0.0, "bleu": 1.5},
            {"label": "step-5", "step": 5, "val_loss": 0.71, "perplexity": 2.03, "loss_tokens": 96},
            {"label": "final", "step": 10, "val_loss": 0.5678, "perplexity": 1.76, "exact_match": 87.5, "bleu": 90.1}]
    (run.path / "eval" / "latest.json").write_text(json.dumps(
        {"version": 1, "rows": rows, "best": "final", "prompts": {"source": "validation", "rows": 24},
         "throughput": {"prompts": 24}}))
    folder = _adapter_folder(tmp_path)
    (folder / "verification.json").write_text(json.dumps(
        {"passed": True, "verdict": "PASSED", "summary": "verification PASSED: greedy tokens identical on 4/4 prompts",
         "criteria": "reloaded with plain PEFT", "inputs": "6 validation examples of the run"}))
    text = build_card(run, "adapter", folder=folder).text
    assert "| weights | validation loss | perplexity | exact match | BLEU |" in text
    assert "| base | 6.2 | 492.7 | 0 | 1.5 |" in text and "| step-5 | 0.71 | 2.03 |  |  |" in text
    assert "| final (best) | 0.5678 | 1.76 | 87.5 | 90.1 |" in text and "generated for 24 prompts" in text
    assert "**PASSED**: greedy tokens identical on 4/4 prompts" in text
    assert "Checked: reloaded with plain PEFT, on 6 validation examples of the run." in text


def test_unreadable_eval_and_verification_files_are_skipped(tmp_path):
    run = _run(tmp_path)
    (run.path / "eval").mkdir()
    (run.path / "eval" / "latest.json").write_text("{not json")
    folder = _adapter_folder(tmp_path)
    (folder / "verification.json").write_text("[1, 2]")
    text = build_card(run, "adapter", folder=folder).text
    assert "## Evaluation" not in text and "## Verification" not in text


def test_gguf_card_says_how_to_run_it_with_llama_cpp_and_ollama(tmp_path):
    folder = tmp_path / "gguf"
    folder.mkdir()
    (folder / "demo-Q4_K_M.gguf").write_bytes(b"GGUF")
    local = build_card(_run(tmp_path), "gguf", folder=folder).text
    assert "gguf" in _front_matter(local)["tags"] and "library_name" not in _front_matter(local)
    assert "llama-cli -m demo-Q4_K_M.gguf" in local and "FROM ./demo-Q4_K_M.gguf" in local
    hub = build_card(_run(tmp_path, name="run2"), "gguf", folder=folder, repo_id="alice/demo-gguf").text
    assert "llama-cli -hf alice/demo-gguf" in hub and "ollama run hf.co/alice/demo-gguf" in hub
    (folder / "Modelfile").write_text("FROM ./demo-Q4_K_M.gguf\n")
    with_modelfile = build_card(_run(tmp_path, name="run3"), "gguf", folder=folder).text
    assert "ollama create my-model -f Modelfile" in with_modelfile and "echo 'FROM" not in with_modelfile


def test_a_run_without_a_curve_has_no_image(tmp_path):
    run = _run(tmp_path)
    run.events_path.write_text(json.dumps(PLAN) + "\n")
    card = build_card(run, "adapter")
    assert CURVES not in card.files and "## Training curves" not in card.text


def _decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines), checking the signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_curves_png_is_a_valid_image_with_both_curves():
    png = loss_curves_png([(s, 5.0 / s) for s in range(1, 50)], [(10, 0.9), (20, 0.5), (40, 0.3)])
    width, height, raw = _decode_png(png)
    assert (width, height) == (720, 360) and len(raw) == height * (1 + 3 * width)
    assert bytes(TRAIN) in raw and bytes(VALIDATION) in raw


@pytest.mark.parametrize("points", [[], [(1, 2.0)], [(1, float("nan")), (2, float("nan"))]])
def test_no_curve_no_image(points):
    assert loss_curves_png(points) is None


def test_a_flat_or_diverging_curve_still_draws():
    assert loss_curves_png([(1, 1.0), (2, 1.0), (3, 1.0)])
    assert loss_curves_png([(1, 1.0), (2, 1e6), (3, float("inf"))])
