"""`studio ARGS`: what opens the GUI, what goes to the command line, and what --help lists (issue #13.8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio import __main__ as entry

ROOT = Path(__file__).resolve().parents[2]


def _studio(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, STUDIO_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=90)


def test_an_unknown_option_is_an_error_not_the_gui(tmp_path):
    res = _studio("--nonsense-flag", home=tmp_path)
    assert res.returncode == 2
    assert "unrecognized arguments: --nonsense-flag" in res.stderr and "usage: studio" in res.stderr


def test_help_lists_the_installation_checks(tmp_path):
    res = _studio("--help", home=tmp_path)
    assert res.returncode == 0
    for option in ("--version", "--diagnose", "--self-test", "studio run.yaml"):
        assert option in res.stdout


def test_only_no_arguments_or_one_config_file_open_the_gui(tmp_path, monkeypatch):
    opened, ran = [], []
    import studio.app
    import studio.cli

    monkeypatch.setattr(studio.app, "main", lambda argv=None, config_path=None: opened.append(config_path) or 0)
    monkeypatch.setattr(studio.cli, "main", lambda argv=None: ran.append(argv) or 0)
    config = tmp_path / "run.yaml"
    config.write_text("name: x\n")
    entry.main([])
    entry.main([str(config)])
    entry.main([str(tmp_path / "missing.yaml")])
    entry.main(["-platform", "offscreen"])
    entry.main(["runs"])
    assert opened == [None, str(config)]
    assert ran == [[str(tmp_path / "missing.yaml")], ["-platform", "offscreen"], ["runs"]]


@pytest.mark.parametrize("flag", ["--version"])
def test_installation_flags_still_answer_through_the_parser(flag, capsys):
    from studio.cli import main

    assert main([flag]) == 0
    assert capsys.readouterr().out.startswith("studio ")
