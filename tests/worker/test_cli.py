"""The headless CLI: same config, same preflight, same worker; readable progress; honest exit codes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio.core.config import demo_config


def _studio(*args, home, timeout=120):
    env = dict(os.environ, STUDIO_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.slow
def test_train_the_demo_for_five_steps_then_list_and_export(tmp_path):
    res = _studio("train", "--demo", "--set", "training.max_steps=5", "--set", "training.logging_steps=1",
                  home=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "step 5/5" in res.stdout and "completed" in res.stdout
    assert "@@studio" not in res.stdout  # events are rendered, not dumped
    runs = _studio("runs", home=tmp_path)
    assert runs.returncode == 0 and "completed" in runs.stdout and "lora" in runs.stdout
    run_id = runs.stdout.splitlines()[1].split()[0]
    exp = _studio("export", run_id, "--kind", "adapter", home=tmp_path)
    assert exp.returncode == 0, exp.stdout + exp.stderr
    assert (tmp_path / "runs" / run_id / "exports" / "adapter" / "adapter_model.safetensors").exists()


def test_a_bad_override_names_the_field(tmp_path):
    res = _studio("train", "--demo", "--set", "training.batch_size=0", home=tmp_path, timeout=60)
    assert res.returncode == 2 and "training.batch_size" in res.stderr


def test_preflight_problems_stop_the_cli_before_any_worker(tmp_path):
    cfg = demo_config().to_dict()
    cfg["model"].update(source="local", path=str(tmp_path / "missing-model"))
    path = tmp_path / "run.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    res = _studio("train", str(path), home=tmp_path / "home", timeout=60)
    assert res.returncode == 2 and "missing-model" in res.stderr
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


def test_runs_on_an_empty_home(tmp_path):
    res = _studio("runs", home=tmp_path, timeout=60)
    assert res.returncode == 0 and "no runs" in res.stdout


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_exits_non_zero(tmp_path):
    import signal

    env = dict(os.environ, STUDIO_HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", "--demo", "--set", "training.max_steps=100000",
                             "--set", "training.logging_steps=1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step "):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert proc.returncode == 1, out
    assert "stopping after the current step" in out and "stopped" in out
    from studio.core.runs import RunStore

    (run,) = RunStore(tmp_path / "runs").list()
    assert run.state == "stopped" and (run.adapter_dir / "adapter_model.safetensors").exists()
