"""The Export page's kinds, GGUF offer and estimate, and the verdict card, with the fake export worker."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from run_helpers import finished_run

from studio.core.config import RunConfig, demo_config


def _export_page(qtbot, w, run):
    w.show()
    w.navigate("export")
    export = w.page("export")
    export.refresh()
    assert export.select_run(run)
    qtbot.waitUntil(lambda: export.form._gguf is not None, timeout=10_000)  # the offer is read in the background
    return export


def test_gguf_is_offered_for_the_demo_with_its_size_and_time_before_anything_starts(qtbot, window, tmp_path):
    run = finished_run(tmp_path / "runs")
    export = _export_page(qtbot, window(), run)
    form = export.form
    assert form.tiles["gguf"].isEnabled() and form.tiles["merged"].isEnabled()
    qtbot.mouseClick(form.tiles["gguf"], Qt.MouseButton.LeftButton)
    assert form.kind() == "gguf" and form.gguf_box.isVisible() and form.quant() == "q4_k_m"
    assert export.out_edit.text().endswith("exports/gguf-q4_k_m")
    assert form.estimate_label.text().startswith("≈ ") and "on this machine" in form.estimate_label.text()
    assert all("≈" in form.quant_combo.itemText(i) for i in range(form.quant_combo.count()))
    assert "4-bit K-quant, the usual choice" in form.quant_combo.currentText()
    form.set_quant("f16")
    assert export.out_edit.text().endswith("exports/gguf-f16") and "half precision" in form.quant_combo.currentText()
    assert "llama.cpp" in form.verify_note.text() and "verify" in form.estimate_label.text()
    form.verify_box.setChecked(False)
    assert "verify" not in form.estimate_label.text() and "Not verified" in form.verify_note.text()
    assert export.export_button.isEnabled()


def test_gguf_is_refused_with_the_reason_for_a_prompt_tuning_run(qtbot, window, tmp_path):
    run = finished_run(tmp_path / "runs", config=demo_config().replace("method", {"name": "prompt_tuning"}))
    export = _export_page(qtbot, window(), run)
    form = export.form
    assert not form.tiles["gguf"].isEnabled() and not form.tiles["merged"].isEnabled()
    note = form.kind_note.text()
    assert "cannot be merged" in note and "GGUF is not offered" in note and "Export the adapter instead" in note
    assert "GGUF is not offered" in form.tiles["gguf"].toolTip()
    form.tiles["gguf"].click()  # a disabled tile does nothing
    assert form.kind() == "adapter" and export.export_button.isEnabled()


def test_an_architecture_llama_cpp_would_not_run_is_refused_naming_what_is_supported(qtbot, window, tmp_path):
    model = tmp_path / "gpt2-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    cfg = RunConfig.model_validate({**demo_config().model_dump(), "model": {"source": "local", "path": str(model)}})
    run = finished_run(tmp_path / "runs", config=cfg)
    export = _export_page(qtbot, window(), run)
    assert not export.form.tiles["gguf"].isEnabled() and export.form.tiles["merged"].isEnabled()
    assert "GPT2LMHeadModel" in export.form.kind_note.text() and "Qwen" in export.form.kind_note.text()


def test_a_verified_gguf_export_shows_passed_with_its_numbers_and_the_ollama_command(qtbot, window, fake_worker,
                                                                                     tmp_path):
    run = finished_run(tmp_path / "runs")
    export = _export_page(qtbot, window(), run)
    export.form.set_kind("gguf")
    export.form.set_quant("f16")
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert export.progress.isVisible() and not export.export_button.isEnabled()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    out = run.exports_dir / "gguf-f16"
    assert export.banner.tone == "ok" and f"Exported the GGUF file to {out}" in export.banner.text()
    args = json.loads((run.exports_dir / "last_args.json").read_text())
    assert args[args.index("--quant") + 1] == "f16" and "--no-verify" not in args and "--from" not in args
    card = export.verdict_card
    assert card.isVisible() and card.property("verdict") == "passed"
    assert card.verdict_label.text() == "✓  Verified: PASSED"
    assert card.figure_texts() == ["Greedy tokens identical: 4/4 prompts", "Top-1 agreement: 99.3%",
                                   "Perplexity change: +0.25%", "Tokenizer: same token ids"]
    assert not card.failures.isVisible()
    assert card.ollama_box.isVisible()
    assert card.ollama_edit.text() == f"cd {out} && ollama create demo -f Modelfile"
    qtbot.mouseClick(card.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == card.ollama_edit.text() and card.copy_button.text() == "Copied"
    assert export.exports_model.rowCount() == 1 and export.exports_model.data(export.exports_model.index(0, 3)) == \
        "PASSED"
    assert export.out_edit.text().endswith("exports/gguf-f16-2"), "the next suggestion is a new folder"


def test_a_failed_verification_is_red_and_says_what_differed(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    export = _export_page(qtbot, window(), run)
    export.form.set_kind("merged")
    fake_worker("verify_fail")
    assert export.start_export()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert export.banner.tone == "error" and "VERIFICATION FAILED" in export.banner.text()
    card = export.verdict_card
    assert card.isVisible() and card.property("verdict") == "failed"
    assert card.verdict_label.text() == "✗  VERIFICATION FAILED" and card.verdict_label.property("tone") == "failed"
    assert card.failures.isVisible() and "greedy: greedy tokens identical on 1/4 prompts" in card.failures.text()
    assert "Greedy tokens identical: 1/4 prompts" in card.figure_texts()
    assert not card.ollama_box.isVisible(), "Ollama is for GGUF files"
    assert export.exports_model.data(export.exports_model.index(0, 3)) == "FAILED"


def test_an_export_without_the_check_says_it_is_not_verified(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    export = _export_page(qtbot, window(), run)
    export.form.verify_box.setChecked(False)
    assert export.start_export()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert "--no-verify" in json.loads((run.exports_dir / "last_args.json").read_text())
    card = export.verdict_card
    assert card.property("verdict") == "none" and "Not verified" in card.verdict_label.text()
