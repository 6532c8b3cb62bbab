"""Can a model be fetched from the Hugging Face hub right now? Answered in seconds, in words.

The worker downloads a hub model that is not in the cache; when the hub cannot be reached it
used to retry for over a minute before failing. ``fetch_problem`` asks first (offline mode, a
connection with a short timeout, the model's API page) so the run is refused before a worker
starts, with what to do. Being offline is an ordinary answer, not an exception. No Qt, no torch.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline_mode() -> Optional[str]:
    """The environment variable that switches the hub off, if one does."""
    for var in OFFLINE_VARIABLES:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return var
    return None


def offline_reason(timeout_s: float = 2.0) -> Optional[str]:
    """None when the hub's host accepts a connection; otherwise why not, in words."""
    var = offline_mode()
    if var:
        return f"Offline mode is on ({var}=1), so nothing can be downloaded."
    url = urlparse(endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    if _proxy_for(url.scheme):
        return None  # only the proxy can tell; the API request below goes through it
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as e:
        return f"The Hugging Face hub ({host}) cannot be reached: {e.strerror or e}."


def fetch_problem(repo_id: str, timeout_s: float = 3.0, repo_type: str = "model") -> Optional[str]:
    """Why ``repo_id`` (a model, or a dataset) cannot be downloaded now (offline, unknown id, gated), or None."""
    reason = offline_reason(timeout_s)
    if reason:
        return reason
    kind = "datasets" if repo_type == "dataset" else "models"
    status, info = _get_json(f"{endpoint()}/api/{kind}/{quote(repo_id, safe='/')}", timeout_s)
    if status is None:
        return f"The Hugging Face hub ({urlparse(endpoint()).hostname}) did not answer: {info}."
    if status in (401, 403, 404):
        login = "" if _token() else " If it is private, log in first (huggingface-cli login, or set HF_TOKEN)."
        return f"The hub has no {repo_type} '{repo_id}' that this computer may read; check the id.{login}"
    if status >= 400:
        return f"The Hugging Face hub answered {status} for '{repo_id}'; try again later."
    if isinstance(info, dict) and info.get("gated") and repo_type == "model":
        probe, _ = _get_json(f"{endpoint()}/{quote(repo_id, safe='/')}/resolve/main/config.json", timeout_s,
                             head=True)
        if probe in (401, 403):
            return (f"'{repo_id}' is gated: accept its license at {endpoint()}/{repo_id} with your account, "
                    "then log in here (huggingface-cli login, or set HF_TOKEN).")
    return None


def dataset_cached(repo_id: str) -> bool:
    """Is a hub dataset in the local Hugging Face cache (downloaded before, so no hub is needed)?"""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return False
    folder = Path(HF_HUB_CACHE) / ("datasets--" + repo_id.replace("/", "--"))
    return (folder / "snapshots").is_dir() and any((folder / "snapshots").iterdir())


def _token() -> Optional[str]:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # an old or missing huggingface_hub: treat as anonymous
        return None


def _proxy_for(scheme: str) -> Optional[str]:
    return urllib.request.getproxies().get(scheme or "https")


def _get_json(url: str, timeout_s: float, head: bool = False) -> tuple[Optional[int], object]:
    """(HTTP status, parsed body or the error text); status None when there was no answer."""
    request = urllib.request.Request(url, method="HEAD" if head else "GET",
                                     headers={"User-Agent": "studio-preflight"})
    token = _token()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the hub's https URL)
            body = b"" if head else response.read(1 << 20)
            try:
                return response.status, json.loads(body) if body else {}
            except ValueError:
                return response.status, {}
    except urllib.error.HTTPError as e:
        return e.code, str(e)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return None, getattr(reason, "strerror", None) or str(reason)
