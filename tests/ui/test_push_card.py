"""Pushing an export from the Export page with the real push worker against the local fake hub
(tests/fake_hub_server.py): logged out, logging in, a private push with byte progress, a cancel and a resume,
and errors that say what to do. The token lives in a throwaway Hugging Face home."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from run_helpers import finished_run

from studio.core.config import demo_config

from tests.fake_hub_server import READ_TOKEN, WRITE_TOKEN, FakeHub, point_huggingface_hub_at

WEIGHTS_BYTES = 6 * 1024 * 1024


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The fake hub, and a Hugging Face home of this test's own (the login saves the token there)."""
    import huggingface_hub.constants as constants

    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))  # the push worker reads the token there
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    import huggingface_hub.hf_api as hf_api

    with FakeHub() as fake:
        point_huggingface_hub_at(fake, monkeypatch)
        # huggingface_hub.login asks its module-level HfApi, made with the endpoint of the day it was imported
        monkeypatch.setattr(hf_api.api, "endpoint", fake.url)
        yield fake


def _exported_run(tmp_path):
    run = finished_run(tmp_path / "runs", config=demo_config().replace("name", "secret-codes"))
    folder = run.exports_dir / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * (WEIGHTS_BYTES // 256))
    (folder / "verification.json").write_text(json.dumps({"passed": True, "checks": [], "summary": "ok"}))
    return run, folder


def _push_card(qtbot, w, run):
    w.show()
    w.navigate("export")  # showing the page asks whose token is saved
    export = w.page("export")
    export.refresh()
    export.select_run(run)
    card = export.push_card
    qtbot.waitUntil(lambda: not card._account_job.busy, timeout=10_000)
    return export, card


def _log_in(qtbot, card, token):
    qtbot.mouseClick(card.login_button, Qt.MouseButton.LeftButton)
    dialog = card.login_dialog
    assert dialog.isVisible() and dialog.token_edit.echoMode() == dialog.token_edit.EchoMode.Password
    qtbot.keyClicks(dialog.token_edit, token)
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    return dialog


def test_log_in_push_privately_with_progress_then_cancel_and_resume(qtbot, window, hub, tmp_path):
    run, folder = _exported_run(tmp_path)
    export, card = _push_card(qtbot, window(), run)
    assert card.isVisible() and card.account_label.text().startswith("Not logged in")
    assert card.repo_edit.text() == "secret-codes" and not card.public_box.isChecked(), "private by default"
    assert "adapter" in card.export_label.text() and "verified: PASSED" in card.export_label.text()
    assert not card.push_button.isEnabled() and "Log in first" in card.push_button.toolTip()

    dialog = _log_in(qtbot, card, "hf_wrong")
    qtbot.waitUntil(lambda: dialog.banner.tone == "error", timeout=10_000)
    assert "(401)" in dialog.banner.text() and dialog.isVisible()
    assert not (tmp_path / "hf-home" / "token").exists(), "a refused token is never saved"
    dialog.token_edit.clear()
    qtbot.keyClicks(dialog.token_edit, WRITE_TOKEN)
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert dialog.token_edit.text() == "", "the token is not kept in the field"
    assert card.account_label.text().startswith("Logged in as alice") and WRITE_TOKEN not in card.account_label.text()
    assert (tmp_path / "hf-home" / "token").read_text().strip() == WRITE_TOKEN
    assert card.push_button.isEnabled()

    card.card_toggle.click()  # the model card, before anything is sent
    qtbot.waitUntil(lambda: "secret-codes" in card.card_text() and "Writing" not in card.card_text(), timeout=10_000)
    assert "alice/secret-codes" in card.card_text()

    hub.slow_puts_from, hub.bytes_per_s = 0, 400_000  # the weights crawl: there is time to cancel
    qtbot.mouseClick(card.push_button, Qt.MouseButton.LeftButton)
    assert card.busy() and card.cancel_button.isVisible() and not card.push_button.isEnabled()
    qtbot.waitUntil(lambda: 0 < card.progress.value() < 1000, timeout=30_000)
    assert " MB of 6." in card.progress_label.text() and "adapter_model.safetensors" in card.progress_label.text()
    qtbot.mouseClick(card.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not card.busy(), timeout=20_000)
    assert "cancelled" in card.banner.text() and card.resume_button.isVisible()
    assert not hub.repo("alice/secret-codes").commits, "nothing was committed"

    hub.bytes_per_s = None
    qtbot.mouseClick(card.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not card.busy(), timeout=30_000)
    assert card.banner.tone == "ok" and "alice/secret-codes" in card.banner.text() and "private" in card.banner.text()
    repo = hub.repo("alice/secret-codes")
    weights = (folder / "adapter_model.safetensors").read_bytes()
    assert repo.private and repo.files["adapter_model.safetensors"] == weights
    assert "README.md" in repo.files and not card.resume_button.isVisible()
    assert card.progress.value() == 1000


def test_a_public_push_and_a_read_only_token_that_says_what_to_do(qtbot, window, hub, tmp_path, monkeypatch):
    run, _folder = _exported_run(tmp_path)
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    export, card = _push_card(qtbot, window(), run)
    assert "read-only" in card.account_label.text()
    card.repo_edit.clear()
    qtbot.keyClicks(card.repo_edit, "alice/open-codes")
    card.public_box.setChecked(True)
    assert card.push()
    qtbot.waitUntil(lambda: not card.busy(), timeout=30_000)
    assert card.banner.tone == "error" and "write access" in card.banner.text()
    assert "Log in again with a token that has write access" in card.banner.text()
    assert "alice/open-codes" not in hub.repos
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert card.push()
    qtbot.waitUntil(lambda: not card.busy(), timeout=30_000)
    assert card.banner.tone == "ok", card.banner.text()
    assert "alice/open-codes" in hub.repos, (list(hub.repos), card.banner.text())
    assert not hub.repo("alice/open-codes").private


def test_without_an_export_there_is_nothing_to_push(qtbot, window, hub, tmp_path):
    run = finished_run(tmp_path / "runs")
    export, card = _push_card(qtbot, window(), run)
    assert not card.push_button.isEnabled() and "Export the run first" in card.export_label.text()
