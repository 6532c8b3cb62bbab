"""Test-wide environment: a throwaway studio home, headless Qt, no Hugging Face network.

Set at import time so that every module (and every worker process a test starts, which
inherits the environment) sees it before the first call to studio.core.paths.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Import the studio from this checkout whatever the pytest import mode.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_HOME = tempfile.mkdtemp(prefix="studio-test-home-")
os.environ["STUDIO_HOME"] = _HOME
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = os.path.join(_HOME, "hf")  # the HF cache scan sees only what tests put there
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_unconfigure(config):
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """The demo trained with its own settings until it knows the codes (210 steps, ~10 s on a CPU), with
    checkpoints at steps 70 and 140. Shared by the worker tests and the GUI's chat tests.

    Trained in this process (studio.worker.train.main, the real worker minus the process). Tests that
    read it must not change it; copy the folder to change anything.
    """
    from studio.core.config import demo_config
    from studio.core.runs import Run
    from studio.worker import train as train_module
    from studio.worker.reporter import Reporter

    folder = tmp_path_factory.mktemp("trained-demo") / "demo"
    folder.mkdir()
    demo_config().replace("training.save_steps", 70).save(folder / "config.yaml")
    run = Run(folder)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)  # in-process: keep pytest's handlers
        assert train_module.main(run.path) == 0, run.log_tail(30)
    return run
