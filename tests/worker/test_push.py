"""Pushing a trained demo run to the Hub: the push worker job, `studio hub login|whoami` and `studio push`,
end to end against the local fake hub (tests/fake_hub_server.py); the real Hub is never reached.

The demo trains once for this module (in this process, as tests/worker/test_resume.py does); each test
works on its own copy of the run folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from studio.core.config import demo_config
from studio.core.launcher import spawn_worker
from studio.core.model_card import CURVES
from studio.core.protocol import check_event, read_events
from studio.core.push_job import JOB, last_push, push_args
from studio.core.runs import Run
from studio.worker import train as train_module
from studio.worker.export import main as export_main
from studio.worker.push import main as push_main
from studio.worker.reporter import Reporter
from tests.fake_hub_server import WRITE_TOKEN, FakeHub, point_huggingface_hub_at
from tests.worker.worker_helpers import make_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = demo_config()
    for key, value in {"max_steps": 6, "logging_steps": 1, "eval_steps": 3}.items():
        cfg = cfg.replace(f"training.{key}", value)
    run = make_run(tmp_path_factory.mktemp("push"), cfg)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Reporter, "install_signal_handlers", lambda self: None)
        assert train_module.main(run.path) == 0, run.log_tail(30)
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained.path, copy)
    return Run(copy)


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as fake:
        point_huggingface_hub_at(fake, monkeypatch)
        yield fake


def _export(run: Run):
    folder = run.exports_dir / "adapter"
    assert export_main(run.path, "adapter", folder) == 0
    return folder


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _push_events(run: Run) -> list[dict]:
    return read_events(run.exports_dir / "push.jsonl")


def test_the_push_job_uploads_the_export_with_a_card_written_for_the_repo(run, hub, monkeypatch):
    folder = _export(run)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    training_record = run.events_path.read_bytes()
    assert push_main(run.path, folder, "demo-adapter") == 0

    repo = hub.repo("alice/demo-adapter")
    assert repo.private, "private by default"
    exported = {p.name for p in folder.iterdir()}
    assert set(repo.files) == exported | {CURVES} and "adapter_model.safetensors" in repo.files
    card = repo.files["README.md"].decode()
    assert card.startswith("---\n") and "library_name: peft" in card and "- lora" in card
    assert 'PeftModel.from_pretrained(base, "alice/demo-adapter")' in card, "the usage code names the repo"
    assert "## Training curves" in card and "216 for training, 24 for validation" in card
    assert repo.files[CURVES].startswith(b"\x89PNG")
    assert (folder / "README.md").read_text() != card, "the exported folder keeps its own card"

    events = _push_events(run)
    for e in events:
        check_event(e["type"], {k: v for k, v in e.items() if k not in ("type", "t")})
    types = [e["type"] for e in events]
    assert types[0] == "hello" and types[-2:] == ["pushed", "done"] and "push" in types
    assert events[-1]["status"] == "completed" and "alice/demo-adapter" in events[-1]["message"]
    progress = [e for e in events if e["type"] == "progress"]
    assert progress and all(e["unit"] == "bytes" for e in progress) and progress[-1]["current"] == progress[-1]["total"]
    assert WRITE_TOKEN not in (run.exports_dir / "push.jsonl").read_text() + (run.exports_dir / "push.log").read_text()
    assert run.events_path.read_bytes() == training_record, "pushing never writes into the training record"
    record = last_push(run)
    assert record.status == "completed" and record.repo_id == "alice/demo-adapter" and record.private
    assert not record.resumable and record.url.endswith("/alice/demo-adapter")


def test_a_refused_token_is_an_auth_error_event_and_the_push_can_be_retried(run, hub, monkeypatch):
    folder = _export(run)
    monkeypatch.setenv("HF_TOKEN", "hf_expired")
    assert push_main(run.path, folder, "alice/demo") == 1
    error = next(e for e in _push_events(run) if e["type"] == "error")
    assert error["kind"] == "auth" and "(401)" in error["message"] and "traceback" not in error
    assert last_push(run) is None, "refused before the upload started: nothing to resume"
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    assert push_main(run.path, folder, "alice/demo") == 0 and last_push(run).status == "completed"


def test_a_killed_push_resumes_without_resending_finished_files(run, hub, monkeypatch):
    folder = _export(run)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    weights = (folder / "adapter_model.safetensors").read_bytes()
    hub.slow_puts_from, hub.bytes_per_s = 1, 300  # the weights go through; the next file crawls
    proc = spawn_worker(run, JOB, *push_args(folder, "alice/killed"))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain the pipe
    deadline = time.time() + 60
    while not any(oid != _sha(weights) for oid in hub.received) and time.time() < deadline:
        assert proc.poll() is None, run.exports_dir.joinpath("push.log").read_text()
        time.sleep(0.1)
    assert hub.received[_sha(weights)] == len(weights)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)

    record = last_push(run)
    assert record.status == "interrupted" and record.resumable and record.repo_id == "alice/killed"
    assert not hub.repo("alice/killed").commits
    hub.bytes_per_s = None
    assert push_main(run.path, folder, "alice/killed") == 0
    assert hub.received[_sha(weights)] == len(weights), "the finished file was not sent again"
    assert hub.repo("alice/killed").files["adapter_model.safetensors"] == weights


def test_a_full_disk_does_not_stop_the_upload(run, hub, monkeypatch, capsys):
    """The push only reads the export; its own record failing to write (ENOSPC) loses nothing on the Hub."""
    import errno

    from studio.worker import reporter

    folder = _export(run)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)

    def full(_event):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(reporter, "encode_json", full)
    assert push_main(run.path, folder, "alice/full-disk") == 0
    assert set(hub.repo("alice/full-disk").files) >= {p.name for p in folder.iterdir()}
    assert "cannot write events.jsonl" in capsys.readouterr().out, "the live stream says the record is not kept"


def test_saving_a_token_on_a_full_disk_says_so(hub, monkeypatch):
    import errno

    import huggingface_hub

    from studio.core.hub_auth import HubError, login

    def full(**_kw):
        raise OSError(errno.ENOSPC, "No space left on device", "/home/me/.cache/huggingface/token")

    monkeypatch.setattr(huggingface_hub, "login", full)
    with pytest.raises(HubError) as e:
        login(WRITE_TOKEN)
    assert e.value.kind == "disk" and "The disk is full" in e.value.message and WRITE_TOKEN not in e.value.message


def _studio(*args: str, env: dict, stdin: str = "", timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _cli_env(hub: FakeHub, tmp_path) -> dict:
    env = dict(os.environ, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        env.pop(var, None)
    return env


def test_cli_login_whoami_and_push_exporting_first(run, hub, tmp_path):
    env = _cli_env(hub, tmp_path)
    out = _studio("hub", "whoami", env=env)
    assert out.returncode == 2 and "studio hub login" in out.stderr
    out = _studio("push", str(run.path), "--repo", "cli-demo", env=env)
    assert out.returncode == 2 and "no Hugging Face token" in out.stderr

    out = _studio("hub", "login", env=env, stdin="hf_wrong\n")
    assert out.returncode == 1 and "token was refused (401)" in out.stderr
    assert not (tmp_path / "hf-home" / "token").exists(), "a refused token is not saved"
    out = _studio("hub", "login", env=env, stdin=WRITE_TOKEN + "\n")
    assert out.returncode == 0 and "alice" in out.stdout and WRITE_TOKEN not in out.stdout + out.stderr
    assert (tmp_path / "hf-home" / "token").read_text().strip() == WRITE_TOKEN
    out = _studio("hub", "whoami", env=env)
    assert out.returncode == 0 and out.stdout.startswith("alice: a write token from the saved login")

    assert not (run.exports_dir / "adapter").exists()
    out = _studio("push", str(run.path), "--repo", "cli-demo", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "exporting it first" in out.stdout and "pushing" in out.stdout and "(private)" in out.stdout
    assert f"completed: Pushed to {hub.url}/alice/cli-demo" in out.stdout and WRITE_TOKEN not in out.stdout
    assert hub.repo("alice/cli-demo").private and "README.md" in hub.repo("alice/cli-demo").files

    out = _studio("push", str(run.path), "--repo", "alice/cli-demo", env=env)
    assert out.returncode == 0 and "everything was already there" in out.stdout
    out = _studio("push", str(run.path), "--repo", "cli-open", "--public", env=env)
    assert out.returncode == 0 and hub.repo("alice/cli-open").private is False
    out = _studio("push", str(run.path), "--repo", "bob/cli", env=env)
    assert out.returncode == 1 and "cannot write to bob/cli" in out.stdout and "Traceback" not in out.stdout


def test_cli_ctrl_c_cancels_the_upload_and_pushing_again_finishes(run, hub, tmp_path):
    folder = _export(run)
    env = dict(_cli_env(hub, tmp_path), HF_TOKEN=WRITE_TOKEN)
    hub.slow_puts_from, hub.bytes_per_s = 0, 2000  # 134 KB of weights: over a minute
    proc = subprocess.Popen([sys.executable, "-m", "studio", "push", str(run.path), "--repo", "ctrl-c"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 60
    while not hub.received and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "cancelling the upload" in out and "stopped: Upload cancelled" in out
    record = last_push(run)
    assert record.status == "stopped" and record.resumable and record.folder == str(folder)
    hub.bytes_per_s = None
    out = _studio("push", str(run.path), "--repo", "ctrl-c", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert hub.repo("alice/ctrl-c").files["adapter_model.safetensors"] == (folder / "adapter_model.safetensors").read_bytes()
