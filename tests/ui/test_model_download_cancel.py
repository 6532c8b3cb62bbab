"""A hub download can be cancelled: the child process ends at once, the page says so, a new one starts.

The hub is faked by tests/ui/fake_hub.py (run in the download's child process): it counts files
with the progress bar it is given, sleeping between updates, like a slow real download.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from studio.core import hub_download as hub


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """Point the download at the fake; returns a setter for how many files and how slowly."""
    monkeypatch.setattr(hub, "SNAPSHOT_DOWNLOAD", "fake_hub:snapshot_download")
    monkeypatch.setattr(hub, "offline_reason", lambda timeout_s=2.0: None)
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


def test_cancel_stops_the_download_and_a_new_one_can_start(qtbot, window, fake_hub):
    fake_hub(files=1000, step_s=0.05)  # fifty seconds unless cancelled
    w = window()
    page = w.page("model")
    page._source_buttons["hub"].click()
    assert page._hub_progress_row.isHidden() and page._download_button.isEnabled()

    page._hub_edit.setText("acme/huge-model")
    page._download_button.click()
    qtbot.waitUntil(lambda: "files" in page._hub_banner.text(), timeout=10_000)  # progress from the child
    assert not page._hub_progress_row.isHidden() and page._cancel_download_button.isEnabled()
    assert not page._download_button.isEnabled()
    assert len(_download_children()) == 1

    clicked = time.monotonic()
    page._cancel_download_button.click()
    qtbot.waitUntil(lambda: not page.downloading, timeout=5_000)
    assert time.monotonic() - clicked < 2.0
    assert page._hub_banner.text() == hub.CANCELLED_MESSAGE and page._hub_banner.tone == "warn"
    assert page._hub_progress_row.isHidden() and page._download_button.isEnabled()
    assert _download_children() == []  # the transfer itself stopped, not just the waiting
    assert w.config_model.config.model.source == "demo"  # nothing half-downloaded was chosen

    fake_hub(files=3)
    page._hub_edit.setText("acme/small-model")
    page._download_button.click()
    qtbot.waitUntil(lambda: not page.downloading, timeout=10_000)
    assert page._hub_banner.tone == "ok" and "Downloaded" in page._hub_banner.text()
    assert (w.config_model.config.model.source, w.config_model.config.model.path) == ("hub", "acme/small-model")
    assert page._hub_progress_row.isHidden()


def test_a_download_cancelled_early_ends_promptly(fake_hub):
    fake_hub(files=1000, step_s=0.05)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()  # while the child is still starting
    started = time.monotonic()
    with pytest.raises(hub.DownloadCancelled, match="new download resumes them"):
        hub.download("acme/huge-model", None, lambda *a: None, cancel)
    assert time.monotonic() - started < 3.0
    assert _download_children() == []


def test_a_download_process_that_dies_is_reported_plainly(fake_hub):
    fake_hub(files=2, exit_code=3)
    reports = []
    with pytest.raises(OSError, match=r"stopped unexpectedly \(exit code 3\)"):
        hub.download("acme/model", None, lambda *a: reports.append(a))
    assert reports and reports[-1][:2] == (2, 2)
