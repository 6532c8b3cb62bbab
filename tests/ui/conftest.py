"""Fixtures for GUI tests: a fresh run store, the fake worker, a fake GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from studio.core import gpu
from studio.core.config import RunConfig
from studio.core.runs import RunStore

FAKE_WORKER = Path(__file__).with_name("fake_worker.py")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def fake_worker(monkeypatch):
    """Make every WorkerProcess launch tests/ui/fake_worker.py; set FAKE_MODE etc. via the returned setter."""
    import studio.core.launcher as launcher

    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, str(FAKE_WORKER), *map(str, args)])

    def configure(mode: str = "ok", steps: int = 5, step_s: float = 0.05) -> None:
        monkeypatch.setenv("FAKE_MODE", mode)
        monkeypatch.setenv("FAKE_STEPS", str(steps))
        monkeypatch.setenv("FAKE_STEP_S", str(step_s))

    configure()
    return configure


@pytest.fixture(autouse=True)
def own_run_roots(monkeypatch, tmp_path):
    """Each test remembers its own custom run folders: another test's would show up in the run lists."""
    from studio.core import run_roots

    monkeypatch.setattr(run_roots, "_path", lambda: tmp_path / run_roots.FILE)


@pytest.fixture(autouse=True)
def no_gpu():
    """GUI tests see no NVIDIA GPU unless they install a fake one."""
    gpu.use_fake(None)
    yield
    gpu.reset()


@pytest.fixture
def demo_config() -> RunConfig:
    return RunConfig(name="test-run")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A main window over a fresh run store and studio home (pages built on first use), short stop timeout.

    At teardown no dialog may open (a modal box would wait forever offscreen) and no worker a
    failed test left behind may survive: live workers are killed, then the window closes.
    """
    from studio.ui.main_window import CLOSE_KEEP, MainWindow
    from studio.ui.pages.spec import Work

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    made = []

    def make(stop_timeout_s: float = 5.0, build_all: bool = False):
        w = MainWindow(store_root=tmp_path / "runs", stop_timeout_s=stop_timeout_s, build_all=build_all)
        w.ask_close_choice = lambda: CLOSE_KEEP
        w.ask_cancel_jobs = lambda: True  # an export, evaluation or upload a test left running: killed
        made.append(w)
        qtbot.addWidget(w)
        return w

    yield make
    for w in made:
        for key in ("train", "compare", "export"):
            page = w.pages.get(key)
            worker = getattr(page, "worker", None)
            if worker is not None and worker.is_running():
                worker.kill()
        for page in w.pages.values():  # jobs that end with the studio (evaluations, uploads)
            if hasattr(page, "busy_work") and page.busy_work() == Work.JOB:
                page.kill_work()
        w.ask_close_choice = lambda: CLOSE_KEEP


def steps_drawn(train_page) -> int:
    return train_page.curves.point_count()
