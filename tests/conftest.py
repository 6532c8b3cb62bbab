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
