"""End to end with the real workers on the demo (slow: it trains, evaluates and writes a GGUF file):
the Evaluate tab shows the tuned model answering the held-out secret codes and the base not, its best row
goes to the Export page, and a GGUF f16 export of it is verified in llama.cpp and shown PASSED."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.core.paths import demo_model_dir
from studio.ui.pages.runs.eval_table import COLUMNS


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_evaluate_the_demo_then_export_its_best_checkpoint_as_a_verified_gguf(qtbot, window):
    if not (demo_model_dir() / "config.json").exists():
        pytest.skip("the demo model is not built (python resources/build_demo.py)")
    w = window(stop_timeout_s=60)
    w.show()
    w.config_model.set("training.save_steps", 70)  # checkpoints at 70 and 140, the final weights at 210
    train = w.page("train")
    run = train.start_run()
    assert run is not None, train.banner.text()
    qtbot.waitUntil(lambda: not train.is_training(), timeout=180_000)
    assert run.state == "completed", train.banner.text()

    w.navigate("runs")
    runs = w.page("runs")
    runs.refresh()
    runs.select_run(run.id)
    runs.tabs.setCurrentWidget(runs.evaluate_tab)
    view = runs.evaluate_view
    view.which_combo.setCurrentIndex(view.which_combo.findData("all"))
    qtbot.mouseClick(view.eval_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy(), timeout=180_000)
    assert not view.banner.text() or view.banner.tone != "error", view.banner.text()
    model = view.table_model
    labels = [model.row(i)["label"] for i in range(model.rowCount())]
    assert labels == ["base", "step-70", "step-140", "final"]
    em = {r["label"]: r["exact_match"] for r in model.rows()}
    assert em["base"] == 0.0 and em[model.best] >= 90.0, em
    base_ppl = float(model.data(model.index(0, COLUMNS.index("Perplexity"))).replace(",", ""))
    assert base_ppl > 100 > model.row(labels.index(model.best))["perplexity"]
    _n, _prompt, reference, base, tuned = view.samples.row_texts(1)
    assert "secret code" in _prompt and tuned == reference and base != reference

    view.select_label(model.best)
    qtbot.mouseClick(view.export_row_button, Qt.MouseButton.LeftButton)
    export = w.page("export")
    assert w.current_page_key() == "export" and export.form.source().label == model.best
    qtbot.waitUntil(lambda: export.form.gguf_ready(), timeout=30_000)
    qtbot.mouseClick(export.form.tiles["gguf"], Qt.MouseButton.LeftButton)
    export.form.set_quant("f16")
    assert export.form.estimate_label.text().startswith("≈ ")
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: export.worker is None, timeout=240_000)
    assert export.banner.tone == "ok", export.banner.text() + export.log_view.toPlainText()[-2000:]
    card = export.verdict_card
    assert card.property("verdict") == "passed" and "PASSED" in card.verdict_label.text()
    assert "Greedy tokens identical: 4/4 prompts" in card.figure_texts()
    assert "ollama create" in card.ollama_edit.text() and card.ollama_box.isVisible()
