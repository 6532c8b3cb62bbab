"""Fixtures shared by the worker tests: the demo trained once per session until it knows the codes."""

from __future__ import annotations

import pytest

from studio.core.runs import Run


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory) -> Run:
    """The demo's own settings (210 steps, ~10 s on a CPU), with checkpoints at steps 70 and 140.

    Trained in this process (studio.worker.train.main, the real worker minus the process). Tests that
    read it must not change it; copy the folder to change anything.
    """
    from worker_helpers import make_run

    from studio.core.config import demo_config
    from studio.worker import train as train_module
    from studio.worker.reporter import Reporter

    cfg = demo_config().replace("training.save_steps", 70)
    run = make_run(tmp_path_factory.mktemp("trained-demo"), cfg, name="demo")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)  # in-process: keep pytest's handlers
        assert train_module.main(run.path) == 0, run.log_tail(30)
    return run
