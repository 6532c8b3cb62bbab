"""File → Open config… / Save config as…: the YAML `studio train` reads, in and out of the pages (issue #13.9)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.core.config import RunConfig


def _menu_action(w, text: str):
    file_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&File")
    return next(a for a in file_menu.actions() if a.text() == text)


def test_open_config_loads_every_page_and_resolves_paths_next_to_the_file(qtbot, window, tmp_path, monkeypatch):
    w = window()
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "tickets.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (folder / "run.yaml").write_text("name: support-bot\ndata: {source: file, path: tickets.jsonl}\n"
                                     "method: {name: dora, r: 8}\ntraining: {learning_rate: 1.0e-4}\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(folder / "run.yaml"), ""))
    _menu_action(w, "Open config…").trigger()
    config = w.config_model.config
    assert config.name == "support-bot" and config.method.name == "dora" and config.method.r == 8
    assert config.data.path == str(folder / "tickets.jsonl")
    assert w._pills["data"].text() == "tickets.jsonl" and w._pills["method"].text() == "DoRA"


def test_a_broken_config_is_explained_and_changes_nothing(qtbot, window, tmp_path, monkeypatch):
    w = window()
    before = w.config_model.config
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {learning_rate: -1}\n")
    warnings = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append(text))
    _menu_action(w, "Open config…").trigger()
    assert w.config_model.config == before
    assert warnings and "bad.yaml" in warnings[0] and "learning" in warnings[0].lower()


def test_save_config_writes_what_open_reads(qtbot, window, tmp_path, monkeypatch):
    w = window()
    w.config_model.set("training.max_steps", 33)
    target = tmp_path / "saved.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    _menu_action(w, "Save config as…").trigger()
    assert RunConfig.load(target).training.max_steps == 33
    assert "studio train" in w.run_status.text()
