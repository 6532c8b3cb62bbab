"""The reporter writes the durable record first and never lets a dead stdout stop the run."""

from __future__ import annotations

import io
import json
import logging
import sys
import warnings

from studio.core.protocol import decode, read_events
from studio.worker.reporter import Reporter


class _DeadPipe(io.StringIO):
    def write(self, s):
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self):
        raise OSError("no fd")


def test_events_go_to_the_file_and_to_stdout(tmp_path, monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with Reporter(tmp_path) as rep:
        rep.emit("phase", phase="training", detail="x")
        print("a library says hello")
        logging.getLogger("transformers").warning("careful")
        warnings.warn("deprecated thing", UserWarning)
    events = read_events(tmp_path / "events.jsonl")
    assert [e["type"] for e in events] == ["phase"]
    lines = out.getvalue().splitlines()
    assert decode(lines[0])["phase"] == "training"
    log = (tmp_path / "worker.log").read_text()
    for text in ("a library says hello", "careful", "deprecated thing"):
        assert text in log and any(text in line for line in lines[1:])
    assert sys.stdout is out  # restored


def test_a_broken_stdout_is_dropped_and_the_record_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", _DeadPipe())
    with Reporter(tmp_path) as rep:
        rep.emit("hello", pid=1, version="x", argv=[])
        assert not rep.stdout_alive
        rep.emit("eval", step=1, val_loss=1.0)
        rep.log("still logging")
    assert [e["type"] for e in read_events(tmp_path / "events.jsonl")] == ["hello", "eval"]
    assert "still logging" in (tmp_path / "worker.log").read_text()


def test_stop_file_and_status(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    with Reporter(tmp_path, capture=False) as rep:
        assert not rep.stop_requested()
        rep.run.request_stop()
        assert rep.stop_requested() and rep.stop_reason() == "stop requested"
        rep.set_status(state="running", pid=123)
    assert json.loads((tmp_path / "status.json").read_text())["pid"] == 123
