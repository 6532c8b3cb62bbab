"""Model folders that are damaged, mismatched or pickled: a 'model' error that says what to do, never 'internal'.

Each case is a copy of the demo model broken the way users' folders break (a half-copied
.safetensors file, a config.json from another model, weights in PyTorch's pickle format, a pickle
that carries code); the real worker runs on it in this process.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from test_resume import _config
from worker_helpers import events_of, make_run

from studio.core.paths import demo_model_dir
from studio.worker import train as train_module
from studio.worker.reporter import Reporter


@pytest.fixture(autouse=True)
def _no_signal_handlers(monkeypatch):
    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)


def _model_copy(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(demo_model_dir(), folder)
    return folder


def _train(tmp_path, folder):
    run = make_run(tmp_path, _config(max_steps=2).replace("model", {"source": "local", "path": str(folder)}))
    code = train_module.main(run.path)
    return code, run


def _failure(tmp_path, folder):
    code, run = _train(tmp_path, folder)
    assert code == 1
    error = events_of(run, "error")[-1]
    assert error["kind"] == "model" and error["traceback"] is None, error
    return error["message"]


def test_a_truncated_safetensors_file(tmp_path):
    folder = _model_copy(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = _failure(tmp_path, folder)
    assert str(folder) in message and "incomplete or damaged" in message and "again" in message


def test_weights_that_do_not_fit_config_json(tmp_path):
    folder = _model_copy(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"] *= 2
    (folder / "config.json").write_text(json.dumps(config))
    message = _failure(tmp_path, folder)
    assert "do not fit its config.json" in message and "hidden_size" in message


def _as_pickle(folder, state=None):
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state if state is not None else weights, folder / "pytorch_model.bin")
    return weights


def test_pickle_weights_train_and_the_user_is_told(tmp_path):
    folder = _model_copy(tmp_path)
    _as_pickle(folder)
    code, run = _train(tmp_path, folder)
    assert code == 0, run.log_tail(20)
    choice = events_of(run, "plan")[0]["choices"]["weights"]
    assert "pytorch_model.bin" in choice["value"] and "weights-only" in choice["reason"]


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_weights_that_carry_code_are_refused(tmp_path):
    folder = _model_copy(tmp_path)
    marker = tmp_path / "PWNED"
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    weights["lm_head.extra"] = _Payload(marker)
    _as_pickle(folder, weights)
    message = _failure(tmp_path, folder)
    assert not marker.exists()
    assert "Refused to load" in message and "weights_only" not in message
