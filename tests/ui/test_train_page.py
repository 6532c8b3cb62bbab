"""Clicking Train and Stop on the real train page, with the fake worker: curves, outcomes, failures."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.runs import RunStore


def _train(window):
    w = window()
    w.navigate("train")
    return w, w.page("train")


def test_train_shows_curve_points_then_stop_reports_step(qtbot, window, fake_worker):
    fake_worker("until_stop", step_s=0.05)
    w, page = _train(window)
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    assert page.is_training() and not page.train_button.isEnabled() and page.stop_button.isEnabled()
    qtbot.waitUntil(lambda: page.curves.point_count() >= 3, timeout=10_000)
    assert page.tile_step.value.text() not in ("—", "")
    assert "CPU" in page.tile_gpu.value.text() and "No NVIDIA GPU" in page.tile_gpu.detail.text()
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert page.badge.text() == "STOPPED"
    assert page.banner.text().startswith("Stopped after finishing step ") and "adapter saved" in page.banner.text()
    assert page.train_button.isEnabled() and not page.stop_button.isEnabled()
    assert page.run.state == "stopped" and page.run.adapter_dir.exists()
    assert "library chatter" in page.log_view.toPlainText()


def test_completed_run_fills_the_progress_bar_and_records_final_loss(qtbot, window, fake_worker):
    fake_worker("ok", steps=4)
    w, page = _train(window)
    page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert page.badge.text() == "COMPLETED"
    assert page.progress.value() == page.progress.maximum() == 4
    assert page.run.status()["final_loss"] > 0


def test_hanging_worker_is_killed_and_the_ui_says_so(qtbot, window, fake_worker):
    fake_worker("hang", step_s=0.05)
    w = window(stop_timeout_s=0.5)
    page = w.page("train")
    page.start_run()
    qtbot.waitUntil(lambda: page.curves.point_count() >= 1, timeout=10_000)
    page.stop_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert page.banner.text() == "Did not stop within 0.5 s; killed."
    assert page.badge.text() == "KILLED" and page.run.state == "killed"


def test_crash_then_another_run_starts(qtbot, window, fake_worker):
    fake_worker("raise")
    w, page = _train(window)
    first = page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert page.badge.text() == "FAILED"
    assert "fake failure" in page.banner.text() and "Last log lines" not in page.banner.text()
    assert "Traceback" in page.log_view.toPlainText()  # the details go to the Log tab
    assert first.state == "failed"
    fake_worker("sigkill")
    second = page.start_run()
    assert second is not None and second.id != first.id
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert "SIGKILL" in page.banner.text() and second.state == "failed"
    fake_worker("ok", steps=3)
    third = page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert third.state == "completed"
    runs = w.page("runs")
    assert runs.table_model.rowCount() == 3


def test_invalid_settings_block_training_with_the_reason(qtbot, window, fake_worker):
    w, page = _train(window)
    w.config_model.set("training.batch_size", 0)
    assert page.start_run() is None
    assert "Micro-batch (Method page)" in page.banner.text() and page.banner.tone == "error"
    assert RunStore(w.store_root).list() == []


def test_redraw_is_timer_driven(qtbot, window, fake_worker):
    """Events only fill the buffer; the curves change when the redraw timer fires."""
    w, page = _train(window)
    page._redraw_timer.stop()
    fake_worker("ok", steps=5, step_s=0.01)
    page.start_run()
    qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
    assert len(page.buffer.steps) == 5
    page._on_redraw_timer_timeout()  # _on_worker_finished flushes once, so the end state shows
    assert page.curves.point_count() == 5


def test_missing_local_model_folder_is_caught_before_starting(qtbot, window, fake_worker, tmp_path):
    w, page = _train(window)
    w.config_model.update({"model.source": "local", "model.path": str(tmp_path / "gone")})
    assert page.start_run() is None
    assert "config.json" in page.banner.text()


def test_unavailable_method_is_refused_with_the_reason(qtbot, window, fake_worker):
    w, page = _train(window)
    w.config_model.set_method("qlora")  # e.g. a config loaded from a GPU machine
    assert page.start_run() is None
    assert "NVIDIA GPU" in page.banner.text() or "CUDA" in page.banner.text()
