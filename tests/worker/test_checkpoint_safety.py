"""Nothing in a checkpoint runs code: a trainer_state.pt carrying a pickled call is refused, not run.

Run folders travel (a colleague's run, a downloaded example), and a pickle may call any function
while it loads. The worker reads training state with PyTorch's weights-only unpickler; these tests
plant a payload that would create a file, resume, and check that the file was never created and
the user was told why.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_resume import _config, _kill_after
from worker_helpers import events_of, make_run

from studio.core.checkpoints import STATE_FILE, latest_checkpoint
from studio.worker import train as train_module
from studio.worker.reporter import Reporter
from studio.worker.resume import UnsafeCheckpointError, load_state, rng_state


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def _killed_run_with_payload(tmp_path, monkeypatch):
    run = make_run(tmp_path, _config())
    with monkeypatch.context() as m:
        _kill_after(m, 4)
        train_module.main(run.path)
    state_file = latest_checkpoint(run.path).path / STATE_FILE
    state = torch.load(state_file, weights_only=True)  # what the studio wrote loads weights-only
    marker = tmp_path / "PWNED"
    state["scheduler"] = _Payload(marker)
    torch.save(state, state_file)
    return run, marker


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, monkeypatch):
    run, marker = _killed_run_with_payload(tmp_path, monkeypatch)
    assert train_module.main(run.path, resume=True) == 1
    assert not marker.exists()
    error = events_of(run, "error")[-1]
    assert "Refused to load" in error["message"] and "posix.system" in error["message"]
    assert "weights_only" not in error["message"]  # not torch's advice to turn the protection off
    assert error["kind"] == "config" and error["traceback"] is None
    assert run.state == "failed"


def test_cli_resume_of_a_poisoned_run_says_why_and_runs_nothing(tmp_path, monkeypatch):
    run, marker = _killed_run_with_payload(tmp_path, monkeypatch)
    res = subprocess.run([sys.executable, "-m", "studio", "train", "--resume", str(run.path)], capture_output=True,
                         text=True, env=dict(os.environ), timeout=180)
    assert res.returncode == 1
    assert "Refused to load" in res.stdout and "Traceback" not in res.stdout
    assert not marker.exists()


def test_training_state_is_plain_tensors_and_values(tmp_path):
    torch.save({"optimizer": {}, "rng": rng_state()}, tmp_path / "s.pt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / "s.pt")) == []


def test_checkpoints_of_earlier_studios_still_load(tmp_path):
    """They stored NumPy's RNG state as an array: allowed, as NumPy rebuilds it without the file's code."""
    import random

    old = {"optimizer": {}, "rng": {"python": random.getstate(), "torch": torch.get_rng_state(),
                                    "numpy": np.random.get_state()}}
    torch.save(old, tmp_path / "old.pt")
    loaded = load_state(tmp_path / "old.pt")
    assert (loaded["rng"]["numpy"][1] == old["rng"]["numpy"][1]).all()


def test_a_damaged_state_file_is_named(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(Exception) as info:
        load_state(tmp_path / STATE_FILE)
    assert not isinstance(info.value, UnsafeCheckpointError)
    assert "damaged" in str(info.value) and STATE_FILE in str(info.value)
