"""Planner → "Use this" for another model, end to end through the pages (issue #13.6).

The switch was silent; the Model page then highlighted "Demo model" while describing the other
one, the Data page kept the other model's warning after switching back, and Train started a
worker that failed on the download instead of being stopped by the pre-flight check.
"""

from __future__ import annotations

MODEL = "Qwen/Qwen2.5-0.5B"  # in the bundled catalog, never in the test's (empty) Hugging Face cache


def _use_planned_lora(w, answer: str) -> None:
    planner = w.page("planner")
    w.navigate("planner")
    planner.set_model_choice(f"catalog:{MODEL}")
    planner.set_target_name("RTX 3060 12GB")
    row = next(i for i, r in enumerate(planner.plan.rows) if r.method == "lora")
    planner.select_cell(row, planner.plan.seq_lens.index(1024))
    planner.ask_model_switch = lambda *a: answer
    planner.use_button.click()


def test_switching_the_model_shows_everywhere_and_train_refuses_before_a_worker(qtbot, window, fake_worker):
    w = window(build_all=True)
    w.show()
    _use_planned_lora(w, "switch")
    assert w._pills["model"].text() == "Qwen2.5-0.5B"

    w.navigate("model")
    model_page = w.pages["model"]
    assert model_page._source_buttons["hub"].isChecked() and not model_page._source_buttons["demo"].isChecked()
    assert model_page._hub_edit.text() == MODEL
    assert "not downloaded yet" in model_page._hub_banner.text()
    assert MODEL in model_page._facts_card.subtitle_label.text()

    w.navigate("train")
    train = w.pages["train"]
    train.train_button.click()
    assert train.worker is None and train.run is None
    assert "not downloaded" in train.banner.text() and "Model page" in train.banner.text()


def test_switching_back_to_the_demo_clears_the_other_models_warning(qtbot, window):
    w = window(build_all=True)
    w.show()
    data = w.pages["data"]
    qtbot.waitUntil(lambda: data._tokenizer is not None, timeout=20000)
    _use_planned_lora(w, "switch")
    qtbot.waitUntil(lambda: "tokenizer" in data.stats_card.banner.text(), timeout=20000)
    w.navigate("model")
    w.pages["model"]._source_buttons["demo"].click()
    assert w.config_model.config.model.source == "demo"
    qtbot.waitUntil(lambda: data._tokenizer is not None, timeout=20000)
    assert "tokenizer" not in data.stats_card.banner.text()
