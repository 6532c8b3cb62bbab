"""What the worker emits is what the protocol lists: every event of a real run, export and failure checked.

studio.core.protocol.EVENTS is the one list of event types and fields; make_event refuses
anything else, and this test runs the real worker (train with evaluation, checkpoints, a stop and
a resume; an export; a failure) and checks every recorded event against the list.
"""

from __future__ import annotations

import json

import pytest
from test_resume import _config, _kill_after
from worker_helpers import make_run

from studio.core.protocol import EVENTS, ProtocolError, check_event, make_event
from studio.worker import export as export_module
from studio.worker import train as train_module
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def _recorded(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_event_of_a_run_a_resume_an_export_and_a_failure_is_in_the_protocol(tmp_path, monkeypatch):
    run = make_run(tmp_path, _config(max_steps=6, save_steps=2, eval_steps=2))
    with monkeypatch.context() as m:
        _kill_after(m, 3)
        train_module.main(run.path)
    assert train_module.main(run.path, resume=True) == 0
    assert export_module.main(run.path, "adapter", tmp_path / "out") == 0
    assert export_module.main(run.path, "merged", tmp_path / "out") == 1  # not empty: a config error
    events = _recorded(run.events_path) + _recorded(run.exports_dir / "export.jsonl")
    seen = set()
    for event in events:
        payload = {k: v for k, v in event.items() if k not in ("type", "t")}
        check_event(event["type"], payload)
        seen.add(event["type"])
    assert {"hello", "phase", "plan", "step", "eval", "checkpoint", "artifact", "progress", "error", "done"} <= seen


def test_the_protocol_refuses_what_it_does_not_list():
    with pytest.raises(ProtocolError, match="unknown event type"):
        make_event("stepp", step=1)
    with pytest.raises(ProtocolError, match="missing loss"):
        make_event("step", step=1, total_steps=2, lr=0.1, tokens=1, tokens_per_s=1.0, elapsed_s=0.1, eta_s=0.1)
    with pytest.raises(ProtocolError, match="fields not in the protocol: colour"):
        make_event("eval", step=1, val_loss=1.0, colour="red")
    assert all(spec.doc for spec in EVENTS.values())
