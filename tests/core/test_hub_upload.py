"""Pushing a folder to the Hub (studio.core.hub_upload) against the local fake hub (tests/fake_hub_server.py).

No network and no torch: the folder is a synthetic export (two LFS weight files, a config, a
README the card replaces, a hidden cache folder), the hub a thread in this process. huggingface_hub
retries a dropped connection 5 times with pauses of 1 to 8 s; those pauses are skipped here.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from types import SimpleNamespace

import pytest

from studio.core.hub_auth import HubError
from studio.core.hub_upload import PushCancelled, push
from tests.fake_hub_server import READ_TOKEN, WRITE_TOKEN, FakeHub, point_huggingface_hub_at

CARD = {"README.md": b"---\ntags:\n- studio\n---\n# the card\n", "curves.png": b"\x89PNG\r\n\x1a\n" + bytes(200)}


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as fake:
        point_huggingface_hub_at(fake, monkeypatch)
        yield fake


@pytest.fixture
def export(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(300_000))
    (folder / "optimizer_extra.safetensors").write_bytes(os.urandom(100_000))
    (folder / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (folder / "README.md").write_text("the export's own card")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "state").write_text("not for the Hub")
    return folder


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_retry_pauses(monkeypatch) -> None:
    from huggingface_hub.utils import _http

    monkeypatch.setattr(_http, "time", SimpleNamespace(sleep=lambda _s: None))


def test_push_uploads_the_folder_and_the_card_into_a_private_repo(hub, export):
    seen = []
    result = push(export, "my-adapter", token=WRITE_TOKEN, card=CARD,
                  progress=lambda done, total, label: seen.append((done, total, label)))
    repo = hub.repo("alice/my-adapter")  # a bare name goes to the token's account
    assert repo.private and result.private, "private is the default"
    assert sorted(repo.files) == ["README.md", "adapter_config.json", "adapter_model.safetensors", "curves.png",
                                  "optimizer_extra.safetensors"]
    assert repo.files["README.md"] == CARD["README.md"], "the card replaces the folder's README"
    assert repo.files["adapter_model.safetensors"] == (export / "adapter_model.safetensors").read_bytes()
    assert repo.lfs_paths == {"adapter_model.safetensors", "optimizer_extra.safetensors", "curves.png"}
    assert len(repo.commits) == 1, "one commit: the card arrives together with the weights"
    assert result.sent_bytes >= 400_000 and not result.kept and result.commit
    total = sum(len(v) for v in repo.files.values())
    assert seen[-1][:2] == (total, total)
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen), "progress never goes back"
    assert any(0 < d < 300_000 for d, _, label in seen if "adapter_model" in label) or len(seen) > 5
    assert not any("xet" in path for _, path in hub.requests), "the studio never asks for Xet storage"


def test_a_second_push_sends_only_what_changed(hub, export):
    push(export, "alice/a", token=WRITE_TOKEN, card=CARD)
    again = push(export, "alice/a", token=WRITE_TOKEN, card=CARD)
    assert again.sent == [] and again.commit is None and len(hub.repo("alice/a").commits) == 1
    assert sorted(again.kept) == sorted(hub.repo("alice/a").files)
    (export / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 16}')
    puts = len(hub.puts())
    third = push(export, "alice/a", token=WRITE_TOKEN, card=CARD)
    assert third.sent == ["adapter_config.json"] and len(hub.puts()) == puts
    assert hub.repo("alice/a").files["adapter_config.json"].endswith(b"16}")


def test_public_when_asked_and_an_existing_public_repo_stays_public_with_a_warning(hub, export):
    assert push(export, "alice/open", token=WRITE_TOKEN, private=False).private is False
    assert hub.repo("alice/open").private is False
    warnings = []
    result = push(export, "alice/open", token=WRITE_TOKEN, card=CARD, warn=warnings.append)
    assert result.private is False and "public" in warnings[0] and "visibility" in warnings[0]


def test_a_bad_token_is_refused_with_what_to_do(hub, export):
    with pytest.raises(HubError) as e:
        push(export, "alice/x", token="hf_not_a_token")
    assert e.value.kind == "auth"
    assert "token was refused (401)" in e.value.message and "https://huggingface.co/settings/tokens" in e.value.message
    assert "hf_not_a_token" not in e.value.message and not hub.repos


def test_no_token_says_how_to_log_in(hub, export, monkeypatch):
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(HubError, match="studio hub login"):
        push(export, "alice/x")


def test_a_repo_you_cannot_write_to_is_refused(hub, export):
    with pytest.raises(HubError) as e:
        push(export, "alice/x", token=READ_TOKEN)
    assert e.value.kind == "auth" and "read-only token" in e.value.message
    with pytest.raises(HubError) as e:
        push(export, "bob/x", token=WRITE_TOKEN)
    assert e.value.kind == "auth" and "cannot write to bob/x" in e.value.message and "alice/" in e.value.message
    assert not hub.repos and not hub.puts()


def test_bad_input_is_refused_before_anything_is_sent(hub, export, tmp_path):
    with pytest.raises(HubError, match="not a valid repo id"):
        push(export, "alice/no spaces", token=WRITE_TOKEN)
    with pytest.raises(HubError, match="export the run first"):
        push(tmp_path / "missing", "alice/x", token=WRITE_TOKEN)
    with pytest.raises(HubError, match="no .gguf file"):
        push(export, "alice/x", token=WRITE_TOKEN, kind="gguf")
    assert not hub.repos


def test_offline_mode_says_so(hub, export, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="Offline mode is on"):
        push(export, "alice/x", token=WRITE_TOKEN)


def test_a_hub_that_cannot_be_reached_says_so(hub, export, monkeypatch):
    _no_retry_pauses(monkeypatch)
    hub.down = True
    with pytest.raises(HubError) as e:
        push(export, "alice/x", token=WRITE_TOKEN)
    assert e.value.kind == "network" and "connection to the Hugging Face Hub (127.0.0.1) dropped" in e.value.message


def test_a_connection_dropped_mid_upload_resumes_without_resending_finished_files(hub, export, monkeypatch):
    _no_retry_pauses(monkeypatch)
    hub.cut_puts_from, hub.cut_after_bytes = 1, 20_000  # the second weight file never gets through
    with pytest.raises(HubError) as e:
        push(export, "alice/r", token=WRITE_TOKEN, card=CARD)
    assert e.value.kind == "network" and "push again to resume" in e.value.message
    assert not hub.repo("alice/r").commits
    big, small = export / "adapter_model.safetensors", export / "optimizer_extra.safetensors"
    assert hub.received[_sha(big)] == 300_000 and hub.received[_sha(small)] == 6 * 20_000  # 1 try + 5 retries

    hub.cut_puts_from = None  # the network is back
    puts = len(hub.puts())
    result = push(export, "alice/r", token=WRITE_TOKEN, card=CARD)
    assert hub.received[_sha(big)] == 300_000, "the finished file was not sent again"
    assert hub.received[_sha(small)] == 6 * 20_000 + 100_000
    assert len(hub.puts()) == puts + 2  # the cut file and curves.png
    assert result.sent_bytes < 300_000 + 100_000 and len(hub.repo("alice/r").commits) == 1
    assert hub.repo("alice/r").files["adapter_model.safetensors"] == big.read_bytes()


def test_cancel_stops_a_slow_upload_mid_file_and_a_later_push_finishes(hub, export):
    # Cancel is checked on every 64 KB read, so the file must outgrow the socket buffers to be read from
    # while the server is still busy: 8 MB at 0.5 MB/s.
    (export / "adapter_model.safetensors").write_bytes(os.urandom(8_000_000))
    hub.bytes_per_s = 500_000
    cancel = threading.Event()
    seen = []

    def progress(done, total, label):
        seen.append(done)
        if done > 0 and "uploading" in label:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(PushCancelled, match="push again to resume"):
        push(export, "alice/c", token=WRITE_TOKEN, progress=progress, cancel=cancel.is_set)
    assert time.monotonic() - started < 8, "cancelled long before the 16 s the file takes"
    assert 0 < max(seen) < 8_000_000 and not hub.repo("alice/c").commits
    hub.bytes_per_s = None
    assert push(export, "alice/c", token=WRITE_TOKEN).commit
