"""The model page: demo preselected, local folders checked at once, the HF cache table, hub offline."""

from __future__ import annotations

import json
import shutil

from studio.core.paths import demo_model_dir


def _hf_cache_model(tmp_path, monkeypatch, repo="acme/tiny-llama"):
    """Put a copy of the demo model into a fake HF cache and point HF_HOME at it."""
    home = tmp_path / "hf"
    repo_dir = home / "hub" / ("models--" + repo.replace("/", "--"))
    snap = repo_dir / "snapshots" / "abc123"
    shutil.copytree(demo_model_dir(), snap)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return snap


def test_demo_is_preselected(qtbot, window):
    w = window(build_all=False)
    page = w.page("model")
    assert w.config_model.config.model.source == "demo" and w.config_model.config.data.source == "demo"
    assert page._source_buttons["demo"].isChecked()
    assert page.facts is not None and page.facts.architecture == "LlamaForCausalLM"
    assert w._pills["model"].text() == "Demo model" and w._pills["data"].text() == "Demo dataset"


def test_folder_without_config_json_is_refused_at_once(qtbot, window, tmp_path):
    page = window().page("model")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    page._source_buttons["local"].click()
    assert page._use_local(str(empty)) is False
    assert "config.json" in page._local_banner.text() and page._local_banner.tone == "error"
    assert page._model.config.model.source == "demo"


def test_local_folder_is_used_with_model_defaults(qtbot, window, tmp_path):
    w = window()
    page = w.page("model")
    folder = tmp_path / "my-model"
    shutil.copytree(demo_model_dir(), folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert page._use_local(str(folder))
    config = w.config_model.config
    assert (config.model.source, config.model.path) == ("local", str(folder))
    assert config.training.max_seq_len == min(2048, cfg["max_position_embeddings"])
    assert page._local_banner.tone == "ok"
    assert w._pills["model"].text() == "my-model"
    # the method page offers this model's own module names
    picker = w.page("method").method_form.editor("target_modules")
    assert set(picker._buttons) == set(page.facts.linear_modules)


def test_hf_cache_table_lists_models(qtbot, window, tmp_path, monkeypatch):
    snap = _hf_cache_model(tmp_path, monkeypatch)
    w = window()
    page = w.page("model")
    page._source_buttons["cache"].click()
    qtbot.waitUntil(lambda: page._cache_model.rowCount() == 1, timeout=10_000)
    m = page._cache_model
    row = [m.data(m.index(0, c)) for c in range(m.columnCount())]
    assert row[0] == "acme/tiny-llama" and row[1] == "LlamaForCausalLM"
    assert row[2].endswith("K") and row[3].endswith("KB")
    page._cache_view.selectRow(0)
    assert w.config_model.config.model.path == str(snap)
    assert w._pills["model"].text() == "acme/tiny-llama"


def test_empty_cache_says_so(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "nothing"))
    page = window().page("model")
    page._source_buttons["cache"].click()
    qtbot.waitUntil(lambda: not page.scanning, timeout=10_000)
    assert "No models in the Hugging Face cache" in page._cache_banner.text()


def test_hub_download_offline_says_so_plainly(qtbot, window, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    page = window().page("model")
    page._source_buttons["hub"].click()
    page._hub_edit.setText("Qwen/Qwen2.5-0.5B")
    page._download_button.click()
    qtbot.waitUntil(lambda: not page.downloading, timeout=10_000)
    assert "Offline" in page._hub_banner.text() and page._hub_banner.tone == "error"
    assert page._model.config.model.source == "demo"


def test_hub_id_already_in_cache_is_used_without_network(qtbot, window, tmp_path, monkeypatch):
    _hf_cache_model(tmp_path, monkeypatch)
    w = window()
    page = w.page("model")
    page._hub_edit.setText("acme/tiny-llama")
    page._download_button.click()
    config = w.config_model.config
    assert (config.model.source, config.model.path) == ("hub", "acme/tiny-llama")
    assert "Already in the Hugging Face cache" in page._hub_banner.text()


def test_bad_hub_id_is_explained(qtbot, window):
    page = window().page("model")
    page._hub_edit.setText("not a repo id")
    page._download_button.click()
    assert "organisation/model" in page._hub_banner.text()


def test_hub_download_reports_progress_and_uses_the_model(qtbot, window, tmp_path, monkeypatch):
    """The download path with the hub faked: progress arrives, the model is selected by its id."""
    from studio.core import hub_download as hub

    # the download runs in a child process: the fake is named, not monkeypatched (tests/ui/fake_hub.py)
    monkeypatch.setattr(hub, "SNAPSHOT_DOWNLOAD", "fake_hub:snapshot_download")
    monkeypatch.setenv("FAKE_HUB_FILES", "3")
    monkeypatch.setenv("FAKE_HUB_SNAPSHOT", str(tmp_path / "snap"))
    monkeypatch.setattr(hub, "offline_reason", lambda timeout_s=2.0: None)
    w = window()
    page = w.page("model")
    progress = []
    page._hub_progress.valueChanged.connect(progress.append)
    page._hub_edit.setText("acme/new-model")
    page._download_button.click()
    qtbot.waitUntil(lambda: not page.downloading, timeout=10_000)
    assert page._hub_banner.tone == "ok" and "Downloaded" in page._hub_banner.text()
    assert 3 in progress
    assert (w.config_model.config.model.source, w.config_model.config.model.path) == ("hub", "acme/new-model")


def test_opening_the_hub_panel_offline_says_so_at_once(qtbot, window, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    page = window().page("model")
    page._source_buttons["hub"].click()
    qtbot.waitUntil(lambda: bool(page._hub_banner.text()), timeout=10_000)
    assert "Offline mode is on" in page._hub_banner.text() and page._hub_banner.tone == "warn"
