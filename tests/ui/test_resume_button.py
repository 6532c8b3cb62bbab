"""The Runs page's Resume: enabled only for an interrupted run with a checkpoint, and it continues the
run on the Train page with the real worker (the curve keeps its history and ends at the last step)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.core.config import demo_config
from studio.core.paths import demo_model_dir
from studio.core.runs import Run


def _run(root, name: str, save_steps: int = 3) -> Run:
    cfg = demo_config()
    for key, value in {"max_steps": 6, "save_steps": save_steps, "logging_steps": 1, "eval_steps": 0}.items():
        cfg = cfg.replace(f"training.{key}", value)
    path = root / name
    path.mkdir(parents=True)
    cfg.save(path / "config.yaml")
    return Run(path)


def _killed_after_step_4(monkeypatch, run: Run) -> None:
    """Train in this process and die at step 5 as a killed worker would (checkpoint at step 3)."""
    from studio.worker import loop as loop_module
    from studio.worker import train as train_module
    from studio.worker.reporter import Reporter

    class Killed(BaseException):
        pass

    real = loop_module.TrainLoop._step
    done = {"n": 0}

    def step(self, micro):
        if done["n"] >= 4:
            raise Killed("killed")
        done["n"] += 1
        return real(self, micro)

    with monkeypatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)
        m.setattr(loop_module.TrainLoop, "_step", step)
        assert train_module.main(run.path) == 1
    run.write_status(state="killed")


def _select(qtbot, w, run: Run):
    runs = w.page("runs")
    runs.refresh()
    runs.select_run(run.id)
    qtbot.waitUntil(lambda: runs._selected is not None and runs._selected.id == run.id, timeout=5_000)
    return runs


def test_resume_is_disabled_with_the_reason_for_finished_and_checkpointless_runs(qtbot, window, tmp_path):
    w = window()
    done = _run(tmp_path / "runs", "a-done")
    done.write_status(state="completed")
    runs = _select(qtbot, w, done)
    assert not runs.resume_button.isEnabled()
    assert "finished already" in runs.resume_button.toolTip()
    bare = _run(tmp_path / "runs", "b-failed", save_steps=0)
    bare.write_status(state="failed")
    runs = _select(qtbot, w, bare)
    assert not runs.resume_button.isEnabled()
    assert "ended before its first checkpoint" in runs.resume_button.toolTip()
    assert "every 10 minutes" in runs.resume_button.toolTip() and "start it again" in runs.resume_button.toolTip()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_resume_button_continues_a_killed_run_on_the_train_page(qtbot, window, tmp_path, monkeypatch):
    if not (demo_model_dir() / "config.json").exists():
        pytest.skip("the demo model is not built (python resources/build_demo.py)")
    run = _run(tmp_path / "runs", "killed")
    _killed_after_step_4(monkeypatch, run)
    w = window(stop_timeout_s=60)
    runs = _select(qtbot, w, run)
    assert runs.resume_button.isEnabled(), runs.resume_button.toolTip()
    assert "step 3 of 6" in runs.resume_button.toolTip()
    qtbot.mouseClick(runs.resume_button, Qt.MouseButton.LeftButton)
    train = w.page("train")
    assert w.current_page_key() == "train" and train.run.path == run.path
    assert train.buffer.steps[:3] == [1.0, 2.0, 3.0]  # the history is on the curve before the worker speaks
    qtbot.waitUntil(lambda: not train.is_training(), timeout=90_000)
    assert run.state == "completed", train.banner.text() + run.log_tail(20)
    assert train.buffer.steps == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert train.badge.text() == "COMPLETED"
    runs = _select(qtbot, w, run)
    assert not runs.resume_button.isEnabled() and "finished already" in runs.resume_button.toolTip()


def test_resume_while_another_run_trains_is_refused_on_the_runs_page(qtbot, window, tmp_path, fake_worker):
    from studio.core.checkpoints import checkpoint_dir, config_hash

    fake_worker("until_stop", step_s=0.05)
    w = window()
    busy = w.page("train").start_run()
    assert busy is not None
    run = _run(tmp_path / "runs", "0-interrupted")  # a checkpoint on disk is all the Runs page looks at
    folder = checkpoint_dir(run.path, 3)
    folder.mkdir(parents=True)
    (folder / "trainer_state.pt").write_bytes(b"")
    (folder / "resume.json").write_text(
        '{"step": 3, "total_steps": 6, "config_hash": "%s"}' % config_hash(run.config()))
    run.write_status(state="stopped")
    runs = _select(qtbot, w, run)
    assert runs.resume_button.isEnabled(), runs.resume_button.toolTip()
    runs.resume_button.click()
    assert "Another run is training" in runs.message.text()
    assert w.page("train").run.path == busy.path
    w.page("train").stop_run()
    qtbot.waitUntil(lambda: not w.page("train").is_training(), timeout=10_000)


def test_a_resumed_run_replaces_repeated_evaluations_and_an_earlier_outcome(qtbot, tmp_path):
    import json

    from studio.ui.process import WorkerProcess
    from studio.ui.widgets.curves import MetricsBuffer

    b = MetricsBuffer()
    b.add({"type": "eval", "step": 4, "val_loss": 0.9})
    b.add({"type": "eval", "step": 8, "val_loss": 0.8})  # the killed attempt got this far
    b.add({"type": "eval", "step": 8, "val_loss": 0.7})  # the resumed one evaluates step 8 again
    assert b.eval_steps == [4.0, 8.0] and b.eval_loss == [0.9, 0.7]

    # Following a resumed run from its files replays the earlier attempt's failure first.
    worker = WorkerProcess(_run(tmp_path, "r"))
    seen = []
    worker.sig_event_received.connect(seen.append)
    for event in ({"type": "error", "message": "old"}, {"type": "done", "status": "failed", "message": "old"},
                  {"type": "hello", "pid": 1}):
        worker._handle_line(json.dumps(event), from_file=True)
    assert worker._done is None and worker._error is None and len(seen) == 3


def test_an_interrupted_run_says_it_can_be_resumed(qtbot, window, tmp_path):
    from studio.core.checkpoints import checkpoint_dir, config_hash

    w = window()
    run = _run(tmp_path / "runs", "interrupted")
    folder = checkpoint_dir(run.path, 3)
    folder.mkdir(parents=True)
    (folder / "trainer_state.pt").write_bytes(b"")
    (folder / "resume.json").write_text(
        '{"step": 3, "total_steps": 6, "config_hash": "%s"}' % config_hash(run.config()))
    run.write_status(state="failed", message="The worker stopped without finishing (killed or crashed).")
    runs = _select(qtbot, w, run)
    assert runs.resume_button.isEnabled()
    assert "killed or crashed" in runs.message.text() and "step 3 of 6" in runs.message.text()
