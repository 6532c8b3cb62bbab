"""A run written to another folder is in both histories: the CLI's runs in the GUI, the GUI's in `studio runs`."""

from __future__ import annotations

import json

from studio import cli


def test_a_run_the_cli_wrote_to_another_folder_is_in_the_gui_history(qtbot, window, monkeypatch, tmp_path):
    import studio.cli.train as train_cmd

    monkeypatch.setattr(train_cmd, "supervise", lambda run_, **kw: 0)  # the run folder is what matters here
    elsewhere = tmp_path / "cli-runs"
    w = window()
    assert cli.main(["train", "--demo", "--output-dir", str(elsewhere)]) == 0
    (run_dir,) = [p for p in elsewhere.iterdir() if p.is_dir()]
    runs = w.page("runs")
    runs.refresh()
    assert runs.table_model.row_of(run_dir.name) >= 0


def test_a_run_the_gui_wrote_to_another_folder_is_listed_by_studio_runs(qtbot, window, fake_worker, tmp_path,
                                                                        capsys):
    fake_worker("ok", steps=2, step_s=0.01)
    w = window()
    elsewhere = tmp_path / "gui-runs"
    w.config_model.set("output_dir", str(elsewhere))
    train = w.page("train")
    run = train.start_run()
    qtbot.waitUntil(lambda: not train.is_training(), timeout=10_000)
    assert run.path.parent == elsewhere
    capsys.readouterr()
    assert cli.main(["runs", "--json"]) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[run.id]["path"] == str(run.path) and listed[run.id]["state"] == "completed"
    assert cli.main(["runs", "--dir", str(tmp_path / "runs"), "--json"]) == 0  # --dir: only that folder
    assert run.id not in {row["id"] for row in json.loads(capsys.readouterr().out)}
    from studio.cli.export import resolve_run

    assert resolve_run(run.id).path == run.path  # `studio export RUN_ID` finds it too
