"""A hub model that is not downloaded and cannot be fetched is refused before any worker starts (issue #13).

The worker used to retry a download for ~70 s before failing. The checks run against a local HTTP
server standing in for the hub, and against a port nobody listens on.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from studio.core import hub
from studio.core.config import demo_config
from studio.core.preflight import preflight

REPO = "someone/not-downloaded-7b"


def _hub_cfg(repo: str = REPO):
    return demo_config().replace("model", {"source": "hub", "path": repo})


class _FakeHub(http.server.BaseHTTPRequestHandler):
    models = {"someone/open-model": {"id": "someone/open-model", "gated": False},
              "someone/gated-model": {"id": "someone/gated-model", "gated": "manual"}}

    def do_GET(self):  # noqa: N802
        name = self.path.removeprefix("/api/models/")
        if self.path.startswith("/api/models/") and name in self.models:
            body = json.dumps(self.models[name]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(401, "Repository not found")

    def do_HEAD(self):  # noqa: N802
        self.send_response(403 if "gated-model" in self.path else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(hub, "_token", lambda: None)
    return monkeypatch


@pytest.fixture
def fake_hub(online):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield
    server.shutdown()


def test_offline_mode_says_so_and_what_to_do():
    problems = preflight(_hub_cfg(), has_cuda=False)
    assert len(problems) == 1
    assert REPO in problems[0] and "not downloaded" in problems[0] and "HF_HUB_OFFLINE" in problems[0]
    assert "Model page" in problems[0] and "demo" in problems[0]


def test_an_unreachable_hub_is_found_in_seconds(online):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    online.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    problems = preflight(_hub_cfg(), has_cuda=False)
    assert time.monotonic() - t0 < 10
    assert len(problems) == 1 and "cannot be reached" in problems[0] and "Model page" in problems[0]


def test_a_reachable_model_is_left_to_the_worker_to_download(fake_hub):
    assert preflight(_hub_cfg("someone/open-model"), has_cuda=False) == []


def test_an_unknown_id_is_named(fake_hub):
    problems = preflight(_hub_cfg("someone/typo-model"), has_cuda=False)
    assert len(problems) == 1 and "check the id" in problems[0] and "huggingface-cli login" in problems[0]


def test_a_gated_model_without_access_says_how_to_get_it(fake_hub):
    problems = preflight(_hub_cfg("someone/gated-model"), has_cuda=False)
    assert len(problems) == 1 and "gated" in problems[0] and "accept its license" in problems[0]


def _hub_data(repo: str):
    return demo_config().replace("data", {"source": "hub", "path": repo})


def test_a_hub_dataset_that_cannot_be_fetched_is_refused_before_a_worker_starts(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    problems = preflight(_hub_data("someone/not-downloaded-data"), has_cuda=False)  # offline (tests' default)
    assert len(problems) == 1 and "someone/not-downloaded-data is not downloaded" in problems[0]
    assert "HF_HUB_OFFLINE" in problems[0] and "dataset file or folder" in problems[0]


def test_a_hub_dataset_in_the_cache_needs_no_hub(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "hub" / "datasets--someone--cached-data" / "snapshots" / "abc").mkdir(parents=True)
    assert preflight(_hub_data("someone/cached-data"), has_cuda=False) == []


def test_an_unknown_hub_dataset_is_named(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    problems = preflight(_hub_data("someone/typo-data"), has_cuda=False)
    assert len(problems) == 1 and "no dataset 'someone/typo-data'" in problems[0]
