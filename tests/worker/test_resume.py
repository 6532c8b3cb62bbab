"""A run killed mid-way and resumed ends where an uninterrupted run ends: same weights, same losses.

The worker runs in this process (``studio.worker.train.main``) so a test can make step 5 fail as a
kill would; everything else is the real worker: demo model, demo data, real checkpoints on disk.
"""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch
from worker_helpers import events_of, make_run

from studio.core.checkpoints import latest_checkpoint, list_checkpoints, resume_problem
from studio.core.config import demo_config
from studio.worker import loop as loop_module
from studio.worker import train as train_module
from studio.worker.reporter import Reporter


class Killed(BaseException):
    """Stands in for SIGKILL/OOM: nothing after it runs in the loop."""


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    # The worker installs SIGINT/SIGTERM handlers; in-process they would outlive the test.
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def _config(method: dict | None = None, **training):
    cfg = demo_config()
    if method:
        cfg = cfg.replace("method", method)
    settings = {"max_steps": 6, "save_steps": 3, "logging_steps": 1, "eval_steps": 0, **training}
    for key, value in settings.items():
        cfg = cfg.replace(f"training.{key}", value)
    return cfg


def _kill_after(monkeypatch, last_step: int) -> None:
    """Step ``last_step + 1`` dies before it changes anything."""
    real = loop_module.TrainLoop._step
    calls = {"n": 0}

    def step(self, micro):
        done = self.start_step + calls["n"]
        if done >= last_step:
            raise Killed(f"killed after step {last_step}")
        calls["n"] += 1
        return real(self, micro)

    monkeypatch.setattr(loop_module.TrainLoop, "_step", step)


def _weights(folder) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _losses(run) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events_of(run, "step")}  # later events win: the resumed ones


def _assert_same_result(straight, resumed, atol: float) -> None:
    a, b = _weights(straight.adapter_dir), _weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and a
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= atol, worst
    la, lb = _losses(straight), _losses(resumed)
    assert sorted(la) == sorted(lb) == [1, 2, 3, 4, 5, 6]
    for step in la:
        assert lb[step] == pytest.approx(la[step], abs=1e-5), (step, la, lb)


DROPOUT_LORA = {"name": "lora", "r": 8, "alpha": 16.0, "target_modules": "all-linear", "dropout": 0.2}


@pytest.mark.parametrize("method,atol", [(None, 1e-6), (DROPOUT_LORA, 1e-6), ({"name": "full"}, 1e-6)],
                         ids=["lora", "lora-dropout-rng", "full"])
def test_killed_run_resumes_to_the_same_weights_and_losses(tmp_path, monkeypatch, method, atol):
    cfg = _config(method)
    straight = make_run(tmp_path, cfg, name="straight")
    assert train_module.main(straight.path) == 0, straight.log_tail(30)

    run = make_run(tmp_path, cfg, name="killed")
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        assert train_module.main(run.path) == 1
    assert run.state == "failed"
    assert [c.step for c in list_checkpoints(run.path)] == [3]
    assert resume_problem(run) == ""

    assert train_module.main(run.path, resume=True) == 0, run.log_tail(30)
    status = run.status()
    assert status["state"] == "completed" and status["steps"] == 6 and status["resumed_from"] == 3
    assert [e["step"] for e in events_of(run, "step")][-3:] == [4, 5, 6]
    _assert_same_result(straight, run, atol)
    assert resume_problem(run).startswith("This run finished already")


# Each family with state beyond weights and AdamW: LISA's sampler (re-drawn across the resume),
# GaLore's projectors (a string in the optimizer state), AdaLoRA's budget, prompt encoders that PEFT
# saves lossily, freeze-tuning's partial save.
MORE_METHODS = [
    {"name": "freeze", "trainable_layers": 1},
    {"name": "lisa", "active_layers": 1, "interval": 2},
    {"name": "galore", "rank": 16, "update_interval": 2},
    {"name": "adalora", "update_every": 1},
    {"name": "p_tuning", "num_virtual_tokens": 4},
    {"name": "prefix_tuning", "num_virtual_tokens": 4},
]


@pytest.mark.slow
@pytest.mark.parametrize("method", MORE_METHODS, ids=[m["name"] for m in MORE_METHODS])
def test_every_method_family_resumes_exactly(tmp_path, monkeypatch, method):
    cfg = _config(method)
    straight = make_run(tmp_path, cfg, name="straight")
    assert train_module.main(straight.path) == 0, straight.log_tail(30)
    run = make_run(tmp_path, cfg, name="killed")
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    assert train_module.main(run.path, resume=True) == 0, run.log_tail(30)
    _assert_same_result(straight, run, 1e-6)


def test_resume_continues_counters_and_keeps_the_last_two_checkpoints(tmp_path, monkeypatch):
    cfg = _config(max_steps=9, save_steps=2)
    run = make_run(tmp_path, cfg)
    with monkeypatch.context() as m:
        _kill_after(m, 7)
        train_module.main(run.path)
    assert [c.step for c in list_checkpoints(run.path)] == [4, 6]
    tokens_at_6 = latest_checkpoint(run.path).info["tokens"]
    assert tokens_at_6 > 0
    assert train_module.main(run.path, resume=True) == 0
    steps = events_of(run, "step")
    first_resumed = [e for e in steps if e["step"] == 7][-1]
    assert first_resumed["tokens"] > tokens_at_6
    assert [c.step for c in list_checkpoints(run.path)] == [6, 8]
    assert not list(run.path.joinpath("checkpoints").glob("*.tmp"))
    phases = [e.get("phase") for e in run.events() if e["type"] == "phase"]
    assert "resuming" in phases


def test_a_half_written_checkpoint_is_ignored(tmp_path, monkeypatch):
    run = make_run(tmp_path, _config())
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    good = latest_checkpoint(run.path)
    # A kill mid-save leaves step-N.tmp; a torn folder without resume.json must not count either.
    shutil.copytree(good.path, run.path / "checkpoints" / "step-4.tmp")
    torn = run.path / "checkpoints" / "step-5"
    shutil.copytree(good.path, torn)
    (torn / "resume.json").unlink()
    assert latest_checkpoint(run.path).step == 3
    assert train_module.main(run.path, resume=True) == 0
    assert run.status()["resumed_from"] == 3


def test_a_full_disk_while_checkpointing_warns_and_training_goes_on(tmp_path, monkeypatch):
    from studio.worker import resume as resume_module

    real = resume_module.Checkpointer._write

    def write(self, folder, step, point):
        if step == 6:
            (folder / "partial.bin").write_bytes(b"x" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, folder, step, point)

    monkeypatch.setattr(resume_module.Checkpointer, "_write", write)
    run = make_run(tmp_path, _config(max_steps=8, save_steps=3))
    assert train_module.main(run.path) == 0, run.log_tail(30)
    assert run.state == "completed"
    warnings = events_of(run, "warning")
    assert any("step 6" in w["message"] and "disk is full" in w["message"]
               and "resume would continue from step 3" in w["message"] for w in warnings), warnings
    assert [c.step for c in list_checkpoints(run.path)] == [3]
    assert not (run.path / "checkpoints" / "step-6.tmp").exists()
    assert [e["step"] for e in events_of(run, "checkpoint")] == [3]


def test_stopping_saves_a_checkpoint_to_resume_from(tmp_path, monkeypatch):
    run = make_run(tmp_path, _config(save_steps=0))
    real = loop_module.TrainLoop._step

    def step(self, micro):
        out = real(self, micro)
        if self.scheduler.last_epoch == 2:  # two steps done: ask to stop as the GUI would
            run.request_stop()
        return out

    with monkeypatch.context() as m:
        m.setattr(loop_module.TrainLoop, "_step", step)
        assert train_module.main(run.path) == 0
    assert run.state == "stopped" and latest_checkpoint(run.path).step == 2
    run.stop_path.unlink()
    assert resume_problem(run) == ""
    assert train_module.main(run.path, resume=True) == 0
    assert run.state == "completed" and run.status()["steps"] == 6


def test_resume_refuses_a_changed_config_and_a_run_without_checkpoints(tmp_path, monkeypatch):
    run = make_run(tmp_path, _config(save_steps=0))
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    assert "ended before its first checkpoint (one is saved every 10 minutes)" in resume_problem(run)
    assert not list((run.path / "checkpoints").glob("step-*.tmp"))  # a kill mid-save leaves nothing behind
    _config(save_steps=0, save_minutes=0).save(run.config_path)
    assert "checkpoints were off" in resume_problem(run) and "Checkpoint every" in resume_problem(run)

    run2 = make_run(tmp_path, _config(), name="changed")
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run2.path)
    _config(learning_rate=1e-4).save(run2.config_path)
    assert "config.yaml changed" in resume_problem(run2)
    # The worker checks too, if started anyway: a clear failure, the checkpoint untouched.
    assert train_module.main(run2.path, resume=True) == 1
    assert "config.yaml changed" in run2.status()["message"]
    assert latest_checkpoint(run2.path).step == 3
    info = json.loads((latest_checkpoint(run2.path).path / "resume.json").read_text())
    assert info["step"] == 3 and info["total_steps"] == 6


def test_time_based_checkpoints_are_spaced_by_how_long_a_save_takes(monkeypatch):
    from types import SimpleNamespace

    clock = {"now": 1000.0}
    monkeypatch.setattr(loop_module.time, "perf_counter", lambda: clock["now"])
    loop = SimpleNamespace(save_checkpoint=lambda step: None, total_steps=100,
                           t=SimpleNamespace(save_steps=0, save_minutes=10.0), _last_save_at=1000.0, _last_save_s=0.0)
    due = lambda step: loop_module.TrainLoop._checkpoint_due(loop, step)  # noqa: E731
    clock["now"] = 1000.0 + 599
    assert not due(5)
    clock["now"] = 1000.0 + 600
    assert due(5) and not due(100)  # never at the last step: the final adapter is saved anyway
    loop._last_save_s = 60.0  # a checkpoint that took a minute to write: the next waits 20 minutes
    assert not due(6)
    clock["now"] = 1000.0 + 1200
    assert due(6)
    loop.t.save_minutes = 0
    assert not due(7)
    loop.t.save_steps = 7
    assert due(7) and not due(8)


def test_every_step_is_due_with_a_tiny_interval_and_only_two_checkpoints_stay(tmp_path, monkeypatch):
    monkeypatch.setattr(loop_module, "SAVE_TIME_FACTOR", 0)  # the spacing by save time is tested above
    run = make_run(tmp_path, _config(save_steps=0, save_minutes=1e-6))
    assert train_module.main(run.path) == 0
    assert [e["step"] for e in events_of(run, "checkpoint")] == [1, 2, 3, 4, 5]
    assert [c.step for c in list_checkpoints(run.path)] == [4, 5]
    from studio.worker.saving import _current_umask

    weights = latest_checkpoint(run.path).path / "adapter_model.safetensors"
    assert weights.stat().st_mode & 0o777 == 0o666 & ~_current_umask()  # exportable and shareable


def test_changed_training_data_is_refused_with_the_reason(tmp_path):
    from studio.core.checkpoints import Checkpoint
    from studio.worker.resume import Checkpointer, ResumeError

    ck = Checkpointer(run_dir=tmp_path, cfg=_config(), runtime=None, model=None, tokenizer=None, optimizer=None,
                      scheduler=None, scaler=None, total_steps=6, train_rows=216)
    same = {"config_hash": ck.config_hash, "train_rows": 216, "total_steps": 6}
    ck.check(Checkpoint(tmp_path, 3, same))
    with pytest.raises(ResumeError, match="training data changed.*200 training rows then, 216 now"):
        ck.check(Checkpoint(tmp_path, 3, {**same, "train_rows": 200}))
    with pytest.raises(ResumeError, match="nothing to resume"):
        ck.check(Checkpoint(tmp_path, 6, same))
