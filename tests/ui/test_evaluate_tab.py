"""The Runs page's Evaluate tab with the fake eval worker: the table fills row by row, the best row is marked,
the answers stand side by side, and a row's checkpoint goes to the Export page preselected."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from run_helpers import finished_run

from studio.core.config import demo_config
from studio.core.runs import RunState, RunStore
from studio.ui.pages.runs.eval_table import BAR_ROLE, BEST_ROLE, COLUMNS


def _cell(model, row, column):
    return model.data(model.index(row, COLUMNS.index(column)))


def _evaluate_tab(w, run):
    w.show()  # so that what is hidden and shown can be asserted
    w.navigate("runs")
    runs = w.page("runs")
    runs.refresh()
    runs.select_run(run.id)
    runs.tabs.setCurrentWidget(runs.evaluate_tab)
    return runs, runs.evaluate_view


def test_evaluate_fills_the_table_marks_the_best_and_shows_answers_side_by_side(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    w = window()
    runs, view = _evaluate_tab(w, run)
    assert "Not evaluated yet" in view.banner.text() and not view.table.isVisible()
    assert view.eval_button.isEnabled() and view.eval_button.text().strip() == "Evaluate"
    fake_worker("ok", step_s=0.15)
    qtbot.mouseClick(view.eval_button, Qt.MouseButton.LeftButton)
    assert view.busy() and view.cancel_button.isVisible() and not view.eval_button.isEnabled()
    assert runs.busy_work() == runs.busy_work().JOB and not runs.delete_button.isEnabled()
    qtbot.waitUntil(lambda: view.table_model.rowCount() >= 2, timeout=10_000)  # rows arrive one by one
    assert view.busy(), "the table filled while the worker was still running"
    qtbot.waitUntil(lambda: not view.busy(), timeout=15_000)

    model = view.table_model
    assert [model.row(i)["label"] for i in range(model.rowCount())] == ["base", "step-70", "step-140", "final"]
    assert _cell(model, 0, "Weights") == "Base model" and _cell(model, 3, "Weights") == "Final weights"
    assert _cell(model, 0, "Exact match") == "0.0" and _cell(model, 3, "Exact match") == "100.0"
    assert model.data(model.index(3, 0), BEST_ROLE) and not model.data(model.index(2, 0), BEST_ROLE)
    assert model.data(model.index(3, COLUMNS.index("Exact match")), BAR_ROLE) == 1.0
    assert _cell(model, 1, "Exact match") == "—", "only the best checkpoint answered"
    assert view.selected_row()["label"] == "final", "the best row is selected"
    assert "4 held-out prompts from the validation split" in view.info_label.text()
    assert view.eval_button.text().strip() == "Evaluate again" and not view.banner.text()
    samples = view.samples
    assert samples.shown_rows() == 5  # the header and 4 prompts
    number, prompt, reference, base, tuned = samples.row_texts(1)
    assert "secret code of the thing 0" in prompt and reference == "bell-42" and tuned == "bell-42"
    assert "\x02" in base and "exact: base 0/4, final weights 4/4" in samples.summary.text()
    samples.filter_combo.setCurrentIndex(1)  # only wrong answers: the final weights got every one right
    assert samples.shown_rows() == 0 and samples.empty.text() == "Every answer is exact."


def test_answers_from_every_checkpoint_and_export_a_row_preselects_it(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    w = window()
    _runs, view = _evaluate_tab(w, run)
    view.which_combo.setCurrentIndex(view.which_combo.findData("all"))
    assert view.evaluate()
    qtbot.waitUntil(lambda: not view.busy(), timeout=15_000)
    assert view.samples.chosen_combo.count() == 3  # step-70, step-140, final beside the base
    view.select_label("step-140")
    assert view.samples.chosen() == "step-140", "the selected row's answers stand beside the base"
    assert view.export_row_button.isEnabled() and view.export_row_button.text() == "Export checkpoint 140"
    view.select_label("base")
    assert not view.export_row_button.isEnabled(), "the base has no trained weights to export"
    view.select_label("step-140")
    qtbot.mouseClick(view.export_row_button, Qt.MouseButton.LeftButton)

    export = w.page("export")
    assert w.current_page_key() == "export" and export.selected_run().path == run.path
    assert export.form.source().label == "step-140" and export.form.source_combo.currentText() == \
        "Checkpoint at step 140"
    assert export.out_edit.text().endswith("exports/adapter-step-140")
    export.start_export()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    args = json.loads((run.exports_dir / "last_args.json").read_text())
    assert args[args.index("--from") + 1] == str(run.path / "checkpoints" / "step-140")


def test_a_prompts_file_is_passed_and_a_failure_is_shown(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    w = window()
    _runs, view = _evaluate_tab(w, run)
    view.set_prompts_file(str(tmp_path / "missing.jsonl"))
    assert not view.evaluate() and "is not a file" in view.banner.text()
    prompts = tmp_path / "held-out.jsonl"
    prompts.write_text('{"prompt": "Hi", "answer": "Hello"}\n')
    view.set_prompts_file(str(prompts))
    fake_worker("raise")
    assert view.evaluate()
    qtbot.waitUntil(lambda: not view.busy(), timeout=10_000)
    assert view.banner.tone == "error" and "the base model moved" in view.banner.text()
    fake_worker("ok")
    assert view.evaluate()
    qtbot.waitUntil(lambda: not view.busy(), timeout=10_000)
    assert "prompts from held-out.jsonl" in view.info_label.text()


def test_cancel_stops_the_evaluation_at_once(qtbot, window, fake_worker, tmp_path):
    run = finished_run(tmp_path / "runs")
    w = window()
    _runs, view = _evaluate_tab(w, run)
    fake_worker("slow", step_s=2.0)
    assert view.evaluate()
    qtbot.waitUntil(lambda: view.table_model.rowCount() >= 1, timeout=10_000)
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy(), timeout=5_000)
    assert "cancelled" in view.banner.text() and not (run.path / "eval" / "latest.json").exists()
    assert "Not evaluated yet" not in view.banner.text() and view.eval_button.isEnabled()


def test_a_run_without_weights_or_still_training_cannot_be_evaluated(qtbot, window, tmp_path):
    run = RunStore(tmp_path / "runs").create(demo_config())
    run.write_status(state=RunState.FAILED, name="demo", started=1.0, message="failed at once")
    w = window()
    _runs, view = _evaluate_tab(w, run)
    assert not view.eval_button.isEnabled() and "no trained weights" in view.eval_button.toolTip()


def test_chat_with_a_row_opens_the_chat_page_on_that_checkpoint(qtbot, window, fake_worker, tmp_path, monkeypatch):
    from studio.ui.pages.chat.page import ChatPage

    loaded = []
    monkeypatch.setattr(ChatPage, "load", lambda self, source: loaded.append(source) or True)  # no chat worker
    run = finished_run(tmp_path / "runs")
    w = window()
    _runs, view = _evaluate_tab(w, run)
    assert view.chat_row_button.isVisible(), "the Chat page performs the chat action"
    view.which_combo.setCurrentIndex(view.which_combo.findData("all"))
    assert view.evaluate()
    qtbot.waitUntil(lambda: not view.busy(), timeout=15_000)
    view.select_label("step-70")
    qtbot.mouseClick(view.chat_row_button, Qt.MouseButton.LeftButton)
    assert w.current_page_key() == "chat"
    assert loaded and loaded[-1].run.path == run.path and loaded[-1].weights.label == "step-70"
