"""`studio download HUB_ID`: the Model page's download in the terminal, against the fake hub (tests/ui/fake_hub.py).

The download runs in a spawned child that imports the fake by name, so the fake's folder goes on
sys.path (the child inherits it) and the fake is steered by environment variables.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from studio import cli
from studio.core import hub_download


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "ui"))
    monkeypatch.setattr(hub_download, "SNAPSHOT_DOWNLOAD", "fake_hub:snapshot_download")
    monkeypatch.setattr(hub_download, "offline_reason", lambda timeout_s=2.0: None)
    monkeypatch.setenv("FAKE_HUB_SNAPSHOT", str(tmp_path / "snap"))
    monkeypatch.delenv("FAKE_HUB_EXIT", raising=False)

    def configure(files: int, step_s: float = 0.0, exit_code: int | None = None) -> None:
        monkeypatch.setenv("FAKE_HUB_FILES", str(files))
        monkeypatch.setenv("FAKE_HUB_STEP_S", str(step_s))
        if exit_code is not None:
            monkeypatch.setenv("FAKE_HUB_EXIT", str(exit_code))

    return configure


def _download_children() -> list:
    return [p for p in multiprocessing.active_children() if p.name == "studio-hub-download"]


def test_download_prints_progress_and_what_arrived(fake_hub, tmp_path, capsys):
    fake_hub(files=3)
    assert cli.main(["download", "acme/small-model"]) == 0
    out = capsys.readouterr().out
    assert "acme/small-model: 3 of 3 files" in out
    assert f"Downloaded acme/small-model into the Hugging Face cache: {tmp_path / 'snap'}" in out
    assert "parameters" in out and "source: hub, path: acme/small-model" in out


def test_ctrl_c_cancels_the_download_at_once(fake_hub, capsys):
    fake_hub(files=1000, step_s=0.05)  # fifty seconds unless cancelled
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        assert cli.main(["download", "acme/huge-model"]) == 130
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5.0
    assert hub_download.CANCELLED_MESSAGE in capsys.readouterr().err
    assert _download_children() == []  # the transfer itself stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is Python's again


def test_a_failed_download_and_a_bad_id_say_so(fake_hub, capsys):
    fake_hub(files=2, exit_code=3)
    assert cli.main(["download", "acme/model"]) == 1
    assert "stopped unexpectedly (exit code 3)" in capsys.readouterr().err
    assert cli.main(["download", "not-an-id"]) == 2
    assert "organisation/model" in capsys.readouterr().err
