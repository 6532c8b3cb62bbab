"""A stand-in for huggingface_hub.snapshot_download, run in the download's child process.

studio.core.hub_download.download calls "module:function" from its SNAPSHOT_DOWNLOAD in a spawned child, where a
monkeypatch in the test process does not reach; tests point it at ``fake_hub:snapshot_download``
and steer it with environment variables (the child inherits them):
FAKE_HUB_FILES bars to count, FAKE_HUB_STEP_S sleep before each update, FAKE_HUB_SNAPSHOT the
folder to fill with the demo model and return, FAKE_HUB_STARTED a file touched when it starts,
FAKE_HUB_EXIT an exit code to die with after the updates (a crash, without a word to the parent).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def snapshot_download(repo_id, revision=None, allow_patterns=None, tqdm_class=None):
    if os.environ.get("FAKE_HUB_STARTED"):
        Path(os.environ["FAKE_HUB_STARTED"]).write_text(repo_id)
    files = int(os.environ.get("FAKE_HUB_FILES", "3"))
    step_s = float(os.environ.get("FAKE_HUB_STEP_S", "0"))
    bar = tqdm_class(total=files)  # the file count, as snapshot_download reports it
    for _ in range(files):
        time.sleep(step_s)
        bar.update(1)
    bar.close()
    if os.environ.get("FAKE_HUB_EXIT"):
        os._exit(int(os.environ["FAKE_HUB_EXIT"]))
    from studio.core.paths import demo_model_dir

    snap = os.environ["FAKE_HUB_SNAPSHOT"]
    shutil.copytree(demo_model_dir(), snap, dirs_exist_ok=True)
    return snap
