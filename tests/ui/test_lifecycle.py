"""Closing the studio during a run (keep / stop / cancel) and re-attaching when it opens again."""

from __future__ import annotations

import os
import signal

from studio.core.runs import Run, RunStore
from studio.ui.main_window import CLOSE_CANCEL, CLOSE_KEEP, CLOSE_STOP


def _start(window, fake_worker, mode="until_stop"):
    fake_worker(mode, step_s=0.05)
    w = window()
    page = w.page("train")
    run = page.start_run()
    return w, page, run


def _kill(run: Run) -> None:
    pid = run.status().get("pid")
    if pid and run.worker_alive():
        os.killpg(pid, signal.SIGKILL)


def test_close_and_keep_training_then_reattach(qtbot, window, fake_worker):
    w, page, run = _start(window, fake_worker)
    try:
        qtbot.waitUntil(lambda: page.curves.point_count() >= 2, timeout=10_000)
        w.ask_close_choice = lambda: CLOSE_KEEP
        assert w.close()
        pid = run.status()["pid"]
        steps_at_close = len([e for e in run.events() if e["type"] == "step"])
        qtbot.wait(400)
        assert run.worker_alive(), "the run keeps training after the window closed"
        assert len([e for e in run.events() if e["type"] == "step"]) > steps_at_close

        again = window()  # the studio opens again
        live = again.reattach_live_runs()
        assert [r.id for r in live] == [run.id]
        train = again.page("train")
        assert again.current_page_key() == "train" and train.is_training() and train.worker.attached
        assert "Re-attached" in train.banner.text()
        qtbot.waitUntil(lambda: train.curves.point_count() > steps_at_close, timeout=10_000)
        assert train.worker.pid == pid
        train.stop_run()
        qtbot.waitUntil(lambda: not train.is_training(), timeout=10_000)
        assert run.state == "stopped" and train.badge.text() == "STOPPED"
    finally:
        _kill(run)


def test_close_and_stop_waits_for_the_adapter_then_closes(qtbot, window, fake_worker):
    w, page, run = _start(window, fake_worker)
    try:
        w.show()
        qtbot.waitUntil(lambda: page.curves.point_count() >= 1, timeout=10_000)
        w.ask_close_choice = lambda: CLOSE_STOP
        assert not w.close(), "the window stays until the worker has saved"
        assert "Stopping" in w.run_status.text()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
        assert run.state == "stopped" and run.adapter_dir.exists()
        assert not run.worker_alive()
    finally:
        _kill(run)


def test_close_cancelled_keeps_everything(qtbot, window, fake_worker):
    w, page, run = _start(window, fake_worker)
    try:
        w.show()
        w.ask_close_choice = lambda: CLOSE_CANCEL
        assert not w.close()
        assert w.isVisible() and page.is_training()
    finally:
        page.stop_run()
        qtbot.waitUntil(lambda: not page.is_training(), timeout=10_000)
        _kill(run)


def test_no_question_when_nothing_runs(qtbot, window):
    w = window()
    w.show()
    w.ask_close_choice = lambda: (_ for _ in ()).throw(AssertionError("must not ask"))
    assert w.close()


def test_dead_worker_is_marked_failed_on_start(qtbot, window, tmp_path, demo_config):
    store = RunStore(tmp_path / "runs")
    run = store.create(demo_config)
    run.write_status(state="running", pid=999_999_999)  # a worker that died while the studio was closed
    w = window()
    assert w.reattach_live_runs() == []
    assert run.state == "failed"
    runs = w.page("runs")
    runs.refresh()
    assert runs.table_model.summary(0).state == "failed"


def test_run_in_a_custom_output_folder_is_listed_and_reattached(qtbot, window, fake_worker, tmp_path):
    fake_worker("until_stop", step_s=0.05)
    w = window()
    custom = tmp_path / "elsewhere"
    w.config_model.set("output_dir", str(custom))
    page = w.page("train")
    run = page.start_run()
    try:
        assert run.path.parent == custom
        qtbot.waitUntil(lambda: page.curves.point_count() >= 1, timeout=10_000)
        w.ask_close_choice = lambda: CLOSE_KEEP
        assert w.close()
        again = window()
        assert [r.id for r in again.reattach_live_runs()] == [run.id]
        runs = again.page("runs")
        runs.refresh()
        assert runs.table_model.row_of(run.id) >= 0
        train = again.page("train")
        train.stop_run()
        qtbot.waitUntil(lambda: not train.is_training(), timeout=10_000)
        assert run.state == "stopped"
    finally:
        _kill(run)


def test_close_during_a_comparison_asks_and_keeps_its_current_run(qtbot, window, fake_worker):
    fake_worker("until_stop", step_s=0.05)
    w = window()
    compare = w.page("compare")
    compare._preflight = lambda config: []
    assert compare.start_comparison() is not None
    run = compare.runs[0]
    try:
        qtbot.waitUntil(lambda: len(run.events()) >= 3, timeout=10_000)
        asked = []
        w.ask_close_choice = lambda: asked.append(1) or CLOSE_KEEP
        assert w.close() and asked
        qtbot.wait(300)
        assert run.worker_alive()
        again = window()
        assert [r.id for r in again.reattach_live_runs()] == [run.id]
        again.page("train").stop_run()
        qtbot.waitUntil(lambda: not again.page("train").is_training(), timeout=10_000)
    finally:
        _kill(run)


def test_close_and_stop_a_comparison(qtbot, window, fake_worker):
    fake_worker("until_stop", step_s=0.05)
    w = window()
    w.show()
    compare = w.page("compare")
    compare._preflight = lambda config: []
    compare.start_comparison()
    run = compare.runs[0]
    try:
        qtbot.waitUntil(lambda: len(run.events()) >= 3, timeout=10_000)
        w.ask_close_choice = lambda: CLOSE_STOP
        assert not w.close()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)
        assert run.state == "stopped" and not run.worker_alive()
    finally:
        _kill(run)
