"""A full disk at any moment: no traceback, a truthful record, every run still listed, Resume offered.

The disk is filled by making the writes fail the way they fail on a full disk (ENOSPC, or torch's
own wording for it) and by making the disk report almost no free space; the real worker runs in
this process on the demo.
"""

from __future__ import annotations

import errno
import json

import pytest
from test_resume import _config, _kill_after
from worker_helpers import events_of, make_run

from studio.core import disk
from studio.core.runs import Run, RunState
from studio.worker import train as train_module
from studio.worker.reporter import Reporter

TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 1728 vs 1622"


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


@pytest.fixture
def nearly_full(monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda path: 20 << 20)


def test_torchs_wording_of_a_full_disk_reads_as_a_full_disk(tmp_path, monkeypatch, nearly_full):
    from studio.worker import resume as resume_module

    real = resume_module.Checkpointer._write

    def write(self, folder, step, point):
        if step == 6:
            raise RuntimeError(TORCH_FULL)
        return real(self, folder, step, point)

    monkeypatch.setattr(resume_module.Checkpointer, "_write", write)
    run = make_run(tmp_path, _config(max_steps=8, save_steps=3))
    assert train_module.main(run.path) == 0
    warning = [w for w in events_of(run, "warning") if "step 6" in w["message"]][0]
    assert "the disk is full: 21.0 MB free on" in warning["message"]
    assert "inline_container" not in warning["message"] and warning["kind"] == "disk"


def test_the_final_save_on_a_full_disk_offers_resume_and_every_command_keeps_working(tmp_path, monkeypatch, capsys):
    from studio.cli import runs as runs_cli
    from studio.worker import saving

    run = make_run(tmp_path, _config(max_steps=6, save_steps=3))
    real_write_status = Run.write_status
    filled = []

    def full(*_a, **_k):
        filled.append(True)  # from here on nothing can be written
        raise OSError(errno.ENOSPC, "No space left on device", str(run.adapter_dir) + ".tmp/adapter_model.safetensors")

    def write_status(self, **fields):
        return full() if filled else real_write_status(self, **fields)

    with monkeypatch.context() as m:
        m.setattr(saving, "save_trained", full)
        m.setattr(Run, "write_status", write_status)
        m.setattr(disk, "free_bytes", lambda path: 0)
        assert train_module.main(run.path) == 1
        error = events_of(run, "error")[-1]
        assert error["kind"] == "disk" and error["traceback"] is None
        assert "The disk is full (0.0 MB free on" in error["message"]
        assert "press Resume" in error["message"] and "checkpoint at step 3" in error["message"]
        # status.json still says 'running' (it could not be rewritten): the dead worker reads as failed, quietly
        status = json.loads((run.path / "status.json").read_text())
        assert status["state"] == "running"
        status["pid"] = 2 ** 22 + 7  # the worker (this test's process) is gone, as it would be
        (run.path / "status.json").write_text(json.dumps(status))
        assert run.reconcile() == RunState.FAILED
        capsys.readouterr()  # the worker's own output so far
        args = type("A", (), {"dir": str(tmp_path), "json": True})()
        assert runs_cli.run(args) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in listed] == ["run"] and listed[0]["state"] == "failed"
    assert run.reconcile() == RunState.FAILED and run.state == "failed"  # written once there is room


def test_a_run_killed_on_a_full_disk_is_listed_and_resumable(tmp_path, monkeypatch):
    from studio.core.checkpoints import resume_problem

    run = make_run(tmp_path, _config())
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    run.write_status(state="running", pid=2 ** 22 + 7)  # a killed worker that never wrote its end
    with monkeypatch.context() as m:
        m.setattr(Run, "write_status", lambda self, **f: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
        assert resume_problem(run) == ""  # Resume is offered: the checkpoint at step 3 is intact


def test_an_export_to_a_full_disk_names_the_destination(tmp_path, monkeypatch):
    from studio.worker import export as export_module
    from studio.worker import saving

    run = make_run(tmp_path, _config(max_steps=2, save_steps=0))
    assert train_module.main(run.path) == 0
    out = tmp_path / "elsewhere" / "my-adapter"

    def full(target, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(run.adapter_dir / "adapter_model.safetensors"))

    monkeypatch.setattr(saving, "save_atomically", full)
    monkeypatch.setattr(disk, "free_bytes", lambda path: 0)
    assert export_module.main(run.path, "adapter", out) == 1
    error = [json.loads(line) for line in (run.exports_dir / "export.jsonl").read_text().splitlines()
             if '"error"' in line][-1]
    assert error["kind"] == "disk" and str(out) in error["message"] and "export again" in error["message"]
    assert not out.exists()
