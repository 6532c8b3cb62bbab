"""Hub access for the model page: is the hub reachable, and download a model into the HF cache.

Plain functions run by a background task (no Qt here). Being offline is an ordinary answer,
with the reason, not an exception.
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Optional
from urllib.parse import urlparse

# What a model needs to load and train; skips other-format duplicates (pytorch .bin next to
# safetensors, GGUF, ONNX, TF/Flax weights).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.py", "*.jinja", "tokenizer*"]


def offline_reason(timeout_s: float = 2.0) -> Optional[str]:
    """None when the hub answers; otherwise why not, in words."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"Offline mode is on ({var}=1), so nothing can be downloaded."
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as e:
        return f"The Hugging Face hub ({host}) cannot be reached: {e.strerror or e}."


def download(repo_id: str, revision: Optional[str], progress: Callable[[int, int, str], None]) -> str:
    """Download a model into the HF cache with file-level progress; returns the snapshot folder."""
    reason = offline_reason()
    if reason:
        raise OSError(reason + " Use a local folder or a model already in the cache.")
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    class _Progress(tqdm):  # snapshot_download counts files with this bar
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            super().update(n)
            progress(int(self.n), int(self.total or 0), f"{repo_id}: {int(self.n)} of {int(self.total or 0)} files")

    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=ALLOW_PATTERNS, tqdm_class=_Progress)
    except Exception as e:  # huggingface_hub raises many types; all mean "could not download"
        name = type(e).__name__
        if "RepositoryNotFound" in name or "404" in str(e):
            raise OSError(f"{repo_id!r} was not found on the hub (check the spelling, or log in for private/gated models).") from e
        if "GatedRepo" in name:
            raise OSError(f"{repo_id!r} is gated: accept its licence on huggingface.co and log in "
                          "(huggingface-cli login), then try again.") from e
        raise OSError(f"Downloading {repo_id!r} failed: {e}") from e
