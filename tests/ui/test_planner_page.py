"""PlannerPage: methods x lengths table for a chosen model and GPU, applying a cell, CSV export."""

from __future__ import annotations

import json

from studio.core.config import RunConfig
from studio.core.models import catalog_facts
from studio.core.vram.plan import NOT_APPLICABLE
from studio.ui.config_model import ConfigModel
from studio.ui.pages.planner.page import PlannerPage


def _page(qtbot, config: RunConfig | None = None) -> tuple[PlannerPage, ConfigModel]:
    model = ConfigModel(config or RunConfig())
    page = PlannerPage(model)
    qtbot.addWidget(page)
    return page, model


def test_plans_a_catalog_model_on_a_catalog_gpu(qtbot):
    page, _ = _page(qtbot)
    page.set_model_choice("catalog:meta-llama/Llama-3.1-8B")
    page.set_target_name("RTX 4090 24GB")
    plan = page.plan
    assert plan is not None and plan.model == "meta-llama/Llama-3.1-8B"
    assert page.table_model.rowCount() == len(plan.rows) and page.table_model.columnCount() == len(plan.seq_lens)
    qlora = plan.rows[0].max_batch
    assert qlora[0] > 0 and qlora == sorted(qlora, reverse=True)
    assert "8.0B parameters" in page.facts_label.text()
    page.set_target_name("H200 141GB")
    assert page.plan.rows[0].max_batch[0] > qlora[0]


def _select_lora_2048(page, seq: int = 2048):
    row = next(i for i, r in enumerate(page.plan.rows) if r.method == "lora")
    col = page.plan.seq_lens.index(seq)
    batch = page.plan.rows[row].max_batch[col]
    assert batch > 0
    page.select_cell(row, col)
    assert page.use_button.isEnabled()
    return batch


def test_use_this_switches_the_model_only_when_asked_and_says_it_is_not_downloaded(qtbot):
    """Issue #13: "Use this" silently switched the run to a catalog model that was not downloaded."""
    page, model = _page(qtbot)
    page.set_model_choice("catalog:Qwen/Qwen2.5-0.5B")
    page.set_target_name("RTX 3060 12GB")
    batch = _select_lora_2048(page)
    assert "planned for Qwen/Qwen2.5-0.5B" in page.selection_label.text()
    asked = []
    page.ask_model_switch = lambda setting, name, downloaded: asked.append((setting, name, downloaded)) or "switch"
    page.use_button.click()
    assert asked == [(f"LoRA r16, 2048 tokens, micro-batch {batch}", "Qwen/Qwen2.5-0.5B", False)]
    c = model.config
    assert (c.method.name, c.training.max_seq_len, c.training.batch_size) == ("lora", 2048, batch)
    assert (c.model.source, c.model.path) == ("hub", "Qwen/Qwen2.5-0.5B")
    assert "Qwen/Qwen2.5-0.5B" in page.banner.text() and "not downloaded" in page.banner.text()
    assert page.banner.tone == "warn"


def test_use_this_can_keep_the_runs_model(qtbot):
    page, model = _page(qtbot)
    page.set_model_choice("catalog:Qwen/Qwen2.5-0.5B")
    page.set_target_name("RTX 3060 12GB")
    batch = _select_lora_2048(page)
    page.ask_model_switch = lambda *a: "keep"
    page.use_button.click()
    c = model.config
    assert c.model.source == "demo" and (c.training.max_seq_len, c.training.batch_size) == (2048, batch)
    assert "demo model" in page.banner.text() and "planned for Qwen/Qwen2.5-0.5B" in page.banner.text()
    page.ask_model_switch = lambda *a: "cancel"
    model.set("training.batch_size", 1)
    page.use_button.click()
    assert model.config.training.batch_size == 1


def test_the_runs_own_model_needs_no_question(qtbot):
    page, model = _page(qtbot)
    page.set_target_name("RTX 3060 12GB")
    page.set_model_choice("current")
    _select_lora_2048(page, seq=512)  # the demo model's whole context
    page.ask_model_switch = lambda *a: (_ for _ in ()).throw(AssertionError("asked"))
    page.use_button.click()
    assert model.config.model.source == "demo" and page.banner.tone == "ok"


def test_cells_that_do_not_fit_cannot_be_used(qtbot):
    page, _ = _page(qtbot)
    page.set_model_choice("catalog:meta-llama/Llama-3.1-70B")
    page.set_target_name("RTX 3060 12GB")
    full = next(i for i, r in enumerate(page.plan.rows) if r.method == "full")
    page.select_cell(full, 0)
    assert not page.use_button.isEnabled()
    assert "does not fit" in page.selection_label.text()


def test_short_context_models_mark_long_lengths(qtbot):
    page, _ = _page(qtbot)
    page.set_model_choice("catalog:microsoft/Phi-3-mini-4k-instruct")
    assert page.plan.rows[0].max_batch[-1] == NOT_APPLICABLE
    assert page.table_model.data(page.table_model.index(0, len(page.plan.seq_lens) - 1)) == "n/a"


def test_csv_export(qtbot, tmp_path):
    page, _ = _page(qtbot)
    page.set_model_choice("catalog:Qwen/Qwen2.5-0.5B")
    out = tmp_path / "plan.csv"
    page.export_csv(str(out))
    lines = out.read_text().splitlines()
    assert lines[0].startswith("method,seq 512") and len(lines) == 1 + len(page.plan.rows)


def test_local_folder_and_a_bad_one(qtbot, tmp_path):
    page, _ = _page(qtbot)
    good = tmp_path / "good"
    good.mkdir()
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 512,
           "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 1000}
    (good / "config.json").write_text(json.dumps(cfg))
    page.set_model_choice(f"folder:{good}")
    assert page.plan is not None and page.plan.model == "good"
    page.set_model_choice(f"folder:{tmp_path / 'empty'}")
    assert page.plan is None
    assert "Cannot plan" in page.banner.text()


def test_run_model_facts_from_the_model_page(qtbot):
    page, _ = _page(qtbot)
    page.set_model_facts(catalog_facts("gemma-2-2b"))
    assert page.plan.model == "google/gemma-2-2b"


def test_cards_that_fit_the_run(qtbot):
    page, model = _page(qtbot, RunConfig().replace("training.batch_size", 2))
    page.set_model_choice("catalog:meta-llama/Llama-3.1-8B")
    text = page.cards_label.text()
    assert text.startswith("LoRA, micro-batch 2 x 1024") and "It fits on" in text
