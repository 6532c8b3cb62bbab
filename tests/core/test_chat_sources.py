"""What the Chat page can load: a run's weights, the worker's arguments, a moved base, adapters over one base."""

from __future__ import annotations

import json

import pytest

from studio.core.chat_sources import ChatSource, adapter_candidates, run_weights
from studio.core.config import RunConfig
from studio.core.runs import RunStore


def _run(store, name, model_path, checkpoints=(), final=True):
    cfg = RunConfig(name=name, model={"source": "local", "path": str(model_path)})
    run = store.create(cfg)
    if final:
        (run.adapter_dir).mkdir()
        (run.adapter_dir / "adapter_model.safetensors").write_bytes(b"x")
    for step in checkpoints:
        folder = run.path / "checkpoints" / f"step-{step}"
        folder.mkdir(parents=True)
        (folder / "resume.json").write_text(json.dumps({"step": step}))
        (folder / "trainer_state.pt").write_bytes(b"x")
    return run


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "base-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_runs_weights_are_the_final_then_its_checkpoints_newest_first(tmp_path, base):
    run = _run(RunStore(tmp_path / "runs"), "a", base, checkpoints=(70, 140))
    weights = run_weights(run)
    assert [(w.label, w.step, w.title) for w in weights] == [
        ("final", None, "Final weights"), ("step-140", 140, "Checkpoint at step 140"),
        ("step-70", 70, "Checkpoint at step 70")]
    assert ChatSource(run, weights[0]).worker_args() == ()
    assert ChatSource(run, weights[1]).worker_args() == ("--checkpoint", "140")
    assert ChatSource(model="/models/x", model_title="x").worker_args() == ("--model", "/models/x")
    with pytest.raises(ValueError):
        ChatSource()


def test_a_moved_base_is_found_missing_and_located(tmp_path, base):
    run = _run(RunStore(tmp_path / "runs"), "a", tmp_path / "gone")
    source = ChatSource(run)
    where, problem = source.base_problem()
    assert where == str(tmp_path / "gone") and "not at" in problem
    located = source.located(base)
    assert located.base_problem() == ("", "")
    assert located.worker_args() == ("--base-path", str(base.resolve()))
    assert located.config().model.path == str(base.resolve())


def test_adapter_candidates_are_other_weights_over_the_same_base(tmp_path, base):
    store = RunStore(tmp_path / "runs")
    first = _run(store, "first", base, checkpoints=(70,))
    twin = _run(store, "twin", base)
    other = tmp_path / "other-model"
    other.mkdir()
    _run(store, "elsewhere", other)
    source = ChatSource(first, run_weights(first)[0])
    names = [name for name, _ in adapter_candidates(source, store.list(), loaded=["final"])]
    assert names == ["step-70", "twin/final"]
    assert adapter_candidates(ChatSource(model=str(base)), store.list()) == []
    assert twin.id != first.id
