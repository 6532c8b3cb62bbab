"""Runs history read from disk (also after reopening) and exporting a finished run."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.methods import method_class


def _finished_run(qtbot, w, fake_worker, steps=4):
    fake_worker("ok", steps=steps)
    page = w.page("train")
    run = page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    return run


def test_runs_page_lists_runs_and_shows_curves_after_reopening(qtbot, window, fake_worker):
    w = window()
    run = _finished_run(qtbot, w, fake_worker, steps=6)
    w.close()

    again = window()  # a new session reads everything from disk
    runs = again.page("runs")
    again.navigate("runs")
    assert runs.table_model.rowCount() == 1
    row = runs.table_model.summary(0)
    assert (row.name, row.state, row.method) == ("test-run" if False else row.name, "completed", "LoRA")
    model = runs.table_model
    values = [model.data(model.index(0, c)) for c in range(model.columnCount())]
    assert values[1] == run.id  # runs that share a name are told apart by their folder
    assert values[2] == "completed" and values[3] == "LoRA" and values[4] == "demo"
    assert values[7] != "—"  # final loss
    assert runs.curves.point_count() == 6
    assert "method:" in runs.config_view.toPlainText()
    assert runs.detail.title_label.text() == run.status()["name"]
    assert runs.export_button.isEnabled()


def test_use_this_config_loads_it_into_the_form(qtbot, window, fake_worker):
    w = window()
    w.config_model.set("method.r", 4)
    run = _finished_run(qtbot, w, fake_worker)
    w.config_model.set("method.r", 32)
    runs = w.page("runs")
    runs.refresh()
    runs.select_run(run.id)
    runs.use_button.click()
    assert w.config_model.config.method.r == 4
    assert w.page("method").method_form.editor("r").value() == 4


def test_export_adapter_and_merged(qtbot, window, fake_worker, tmp_path):
    w = window()
    run = _finished_run(qtbot, w, fake_worker)
    runs = w.page("runs")
    runs.refresh()
    runs.export_button.click()  # runs page asks main window to open the export page
    export = w.page("export")
    assert w.current_page_key() == "export" and export.selected_run().path == run.path
    assert export.out_edit.text().endswith("exports/adapter")
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert export.banner.tone == "ok" and (run.exports_dir / "adapter" / "adapter_config.json").exists()
    assert export.form.tiles["merged"].isEnabled()
    export.form.tiles["merged"].click()
    assert export.out_edit.text().endswith("exports/merged")
    export.export_button.click()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert (run.exports_dir / "merged" / "config.json").exists()
    assert export.banner.text().startswith(f"Exported the merged model to {run.exports_dir / 'merged'} in ")
    assert export.out_edit.text().endswith("exports/merged-2"), "the next suggestion is a fresh folder"
    listed = {export.exports_model.export(i).folder.name for i in range(export.exports_model.rowCount())}
    assert listed == {"merged", "adapter"}
    export.out_edit.setText(str(run.exports_dir / "merged"))
    export.export_button.click()  # a folder that is not empty: refuse rather than overwrite
    assert export.worker is None and "not empty" in export.banner.text()


def test_export_failure_is_shown(qtbot, window, fake_worker):
    w = window()
    _finished_run(qtbot, w, fake_worker)
    export = w.page("export")
    export.refresh()
    fake_worker("raise")
    export.export_button.click()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert export.banner.tone == "error" and "fake failure" in export.banner.text()


def test_merge_disabled_for_methods_that_cannot_merge(qtbot, window, fake_worker):
    unmergeable = next(n for n in ("prompt_tuning", "p_tuning", "prefix_tuning")
                       if not method_class(n).info.mergeable)
    w = window()
    w.config_model.set_method(unmergeable)
    _finished_run(qtbot, w, fake_worker)
    export = w.page("export")
    export.refresh()
    assert not export.form.tiles["merged"].isEnabled() and export.form.kind() == "adapter"
    assert "cannot be merged" in export.form.kind_note.text()


def test_export_page_without_finished_runs_says_so(qtbot, window):
    export = window().page("export")
    assert not export.export_button.isEnabled()
    assert "No finished runs" in export.banner.text()


def test_delete_a_run(qtbot, window, fake_worker):
    w = window()
    first = _finished_run(qtbot, w, fake_worker)
    second = _finished_run(qtbot, w, fake_worker)
    runs = w.page("runs")
    runs.refresh()
    runs.select_run(first.id)
    runs.confirm_delete = lambda run: False
    runs.delete_button.click()
    assert first.path.exists()
    runs.confirm_delete = lambda run: True
    runs.delete_button.click()
    assert not first.path.exists() and second.path.exists()
    assert runs.table_model.rowCount() == 1


def test_selected_live_run_grows_on_the_runs_page(qtbot, window, fake_worker):
    fake_worker("until_stop", step_s=0.05)
    w = window()
    train = w.page("train")
    run = train.start_run()
    w.show()  # the live timer only works for a page the user can see
    runs = w.page("runs")
    w.navigate("runs")
    runs._live_timer.setInterval(100)
    runs.refresh()
    runs.select_run(run.id)
    qtbot.waitUntil(lambda: runs.curves.point_count() >= 5, timeout=10_000)
    train.stop_run()
    qtbot.waitUntil(lambda: runs.state_badge.text() == "STOPPED", timeout=10_000)
    assert runs.curves.point_count() == len([e for e in run.events() if e["type"] == "step"])


def test_measure_generation_speed_shows_the_trade_off(qtbot, window, fake_worker):
    w = window()
    run = _finished_run(qtbot, w, fake_worker)
    export = w.page("export")
    export.refresh()
    export.select_run(run)
    assert export.speed_button.isEnabled() and "Not measured yet" in export.speed_result.text()
    export.speed_button.click()
    assert not export.speed_button.isEnabled() and not export.export_button.isEnabled()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    text = export.speed_result.text()
    assert "Adapter kept separate (hot-swappable): 100.0 tokens/s" in text
    assert "Merged: 150.0 tokens/s (1.50× faster)" in text and "cpu" in text
    assert (run.path / "genspeed.json").exists() and export.speed_button.isEnabled()
    export.refresh()  # a stored result is shown again on selection
    export.select_run(run)
    assert "1.50× faster" in export.speed_result.text()


def test_generation_speed_failure_is_shown(qtbot, window, fake_worker):
    w = window()
    _finished_run(qtbot, w, fake_worker)
    export = w.page("export")
    export.refresh()
    fake_worker("raise")
    export.speed_button.click()
    qtbot.waitUntil(lambda: export.worker is None, timeout=10_000)
    assert export.speed_banner.tone == "error" and "out of memory" in export.speed_banner.text()
    assert export.speed_button.isEnabled()


def test_generation_speed_explains_methods_that_cannot_merge(qtbot, window, fake_worker):
    unmergeable = next(n for n in ("prompt_tuning", "p_tuning", "prefix_tuning")
                       if not method_class(n).info.mergeable)
    w = window()
    w.config_model.set_method(unmergeable)
    _finished_run(qtbot, w, fake_worker)
    export = w.page("export")
    export.refresh()
    assert not export.speed_button.isEnabled()
    assert "cannot be merged" in export.speed_result.text()
    assert method_class(unmergeable).info.merge_note in export.speed_result.text()
