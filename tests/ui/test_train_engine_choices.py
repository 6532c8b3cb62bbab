"""The Train page shows what the engine chose for each setting (issue #6), from the plan event."""

from __future__ import annotations

import json

from studio.core.engine_choice import Choice
from studio.ui.widgets.engine_choices import EngineChoicesView

PLAN = {
    "type": "plan", "total_steps": 10, "epochs": 1, "steps_per_epoch": 10, "train_rows": 40, "val_rows": 0,
    "trainable_params": 1000, "total_params": 100000, "device": "cuda", "precision": "bf16",
    "choices": {
        "compile": "on (auto: 600 steps repay a compile of under a minute)",
        "attention_backend": "flash / memory-efficient, cuDNN left out (auto: lengths vary)",
        "allocator": "expandable segments (auto: reserved memory stays close to allocated; no fragmentation gaps)",
        "adapter_compute": "bf16 (auto: adapters compute in the model's precision; fp32 master weights)",
        "group_by_length": "on (auto: lengths vary, padding would be 41%)",
        "batching": "padded to the longest, no attention mask (causal: the padding is never seen)",
        "some_new_choice": "yes",
    },
}


def test_plan_event_fills_engine_choices_with_titles_values_and_reasons(qtbot, window):
    w = window()
    page = w.page("train")
    view = page.engine_view
    assert view.keys() == [] and not view.placeholder.isHidden()
    page._on_worker_event_received(PLAN)
    assert view.placeholder.isHidden()
    # known keys in reading order, unknown ones last
    assert view.keys() == ["attention_backend", "compile", "adapter_compute", "allocator", "batching",
                           "group_by_length", "some_new_choice"]
    titles = {k: view.title_text(k) for k in view.keys()}
    assert titles["attention_backend"] == "Attention kernel" and titles["allocator"] == "Allocator"
    assert titles["adapter_compute"] == "Adapter compute" and titles["group_by_length"] == "Length grouping"
    assert titles["compile"] == "Compile" and titles["some_new_choice"] == "Some new choice"
    assert view.value_text("compile") == "on"
    assert view.reason_text("compile") == "auto: 600 steps repay a compile of under a minute"
    assert view.value_text("attention_backend") == "flash / memory-efficient, cuDNN left out"
    assert view.value_text("some_new_choice") == "yes" and view.reason_text("some_new_choice") == ""
    # the tooltip names the setting that overrides an auto choice
    assert "Compile layers" in view.tooltip("compile") and "Method page" in view.tooltip("compile")
    assert "Group by length" in view.tooltip("group_by_length")
    assert "Method page" not in view.tooltip("allocator")


def test_following_a_run_shows_its_recorded_choices_and_a_new_plan_replaces_them(qtbot, tmp_path):
    view = EngineChoicesView()
    qtbot.addWidget(view)
    from studio.ui.widgets.engine_choices import read_engine_json

    (tmp_path / "engine.json").write_text(json.dumps({"loss": "chunked (auto: no fp32 logits)"}), encoding="utf-8")
    view.set_choices(read_engine_json(tmp_path))
    assert view.keys() == ["loss"] and view.value_text("loss") == "chunked"
    view.set_choices(PLAN["choices"])
    assert "loss" not in view.keys() and len(view.keys()) == 7
    assert read_engine_json(tmp_path / "missing") == {}
    (tmp_path / "engine.json").write_text("{torn", encoding="utf-8")
    assert read_engine_json(tmp_path) == {}


def test_runs_recorded_before_choices_were_typed_still_read():
    assert Choice.from_json("gradient_checkpointing", "off (auto: CPU training)") == Choice(
        "off", "auto: CPU training", "training.gradient_checkpointing")
    assert Choice.from_json("allocator", "PyTorch default caching allocator").value == "PyTorch default caching allocator"
    assert Choice.from_json("x", "on (auto: activations need ~3.1 GiB (estimate))").reason == \
        "auto: activations need ~3.1 GiB (estimate)"
    assert Choice.from_json("kernels", "on: Liger RMSNorm, RoPE and SwiGLU kernels").on


def test_typed_choices_show_value_reason_and_their_setting(qtbot):
    view = EngineChoicesView()
    qtbot.addWidget(view)
    view.set_choices({"compile": Choice("off", "auto: a run of 12 steps would spend longer compiling than it saves")
                      .for_key("compile").to_json()})
    assert view.value_text("compile") == "off" and view.reason_text("compile").startswith("auto: a run of 12")
    assert "Compile layers" in view.tooltip("compile")


def test_runs_page_shows_a_runs_recorded_choices(qtbot, window, store, demo_config):
    run = store.create(demo_config)
    (run.path / "engine.json").write_text(json.dumps(PLAN["choices"]), encoding="utf-8")
    w = window()
    w.navigate("runs")
    page = w.page("runs")
    page.refresh()
    page.select_run(run.id)
    assert page.engine_view.value_text("group_by_length") == "on"
    assert page.engine_view.reason_text("group_by_length") == "auto: lengths vary, padding would be 41%"
