"""Calibration: estimate vs measured for finished runs, fitted overheads stored in the studio home."""

from __future__ import annotations

import json

from studio.core.config import RunConfig
from studio.core.runs import RunStore
from studio.core.vram import estimate
from studio.core.vram.calibration import (
    calibrate, calibration_path, current_overheads, estimate_vs_measured, measured_peaks,
)


def _model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 4000}))
    return folder


def _run_with_peaks(store, folder, alloc_scale, reserved_extra=0.10):
    c = RunConfig().replace("model", {"source": "local", "path": str(folder)})
    c = c.replace("training.gradient_checkpointing", "off").replace("training.batch_size", 2)
    run = store.create(c)
    from studio.core.models import inspect_model

    est = estimate(c, inspect_model(folder))
    b = est.breakdown
    variable = b["activations"] + b["logits"]
    measured = int(est.peak_allocated - variable + variable * alloc_scale)
    events = [{"type": "plan", "t": 0, "choices": {
        "gradient_checkpointing": "off (auto: fits)", "loss": "chunked (auto)",
        "adapter_compute": "bf16 compute with fp32 master weights (auto: autocast, no fp32 copies of activations)"}}]
    for step in (1, 2, 3):
        events.append({"type": "step", "t": step, "step": step, "mem_peak_allocated": measured - (step == 1) * 10,
                       "mem_peak_reserved": int(measured * (1 + reserved_extra))})
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return run, est, measured


def test_measured_peaks_skip_the_first_step():
    events = [{"type": "step", "step": 1, "mem_peak_allocated": 500, "mem_peak_reserved": 600},
              {"type": "step", "step": 2, "mem_peak_allocated": 400, "mem_peak_reserved": 450},
              {"type": "eval", "step": 2}]
    m = measured_peaks(events)
    assert (m.peak_allocated, m.peak_reserved) == (400, 450)
    assert measured_peaks([{"type": "step", "step": 1, "mem_peak_allocated": 5}]).peak_allocated == 5
    assert measured_peaks([{"type": "step", "step": 3}]) is None


def test_estimate_vs_measured_and_calibration_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs")
    folder = _model_folder(tmp_path)
    run, est, measured = _run_with_peaks(store, folder, alloc_scale=1.3)
    got_est, got_meas = estimate_vs_measured(run)
    assert got_meas.peak_allocated == measured
    assert got_est.peak_allocated == est.peak_allocated
    assert got_est.setup.gc is False  # the engine's recorded decision is used
    _run_with_peaks(store, folder, alloc_scale=1.3)
    ov, rows = calibrate(store.list())
    assert len(rows) == 2
    assert abs(ov.activation_scale - 1.3) < 0.02
    assert calibration_path().exists()
    assert current_overheads().activation_scale == ov.activation_scale
    after, meas = estimate_vs_measured(run)
    assert abs(after.peak_allocated - meas.peak_allocated) / meas.peak_allocated < 0.02
    calibration_path().write_text("{broken")
    assert current_overheads().source == "default"  # a damaged file never breaks estimates
    calibration_path().unlink()


def test_runs_from_before_adapter_compute_are_estimated_with_fp32_adapters(tmp_path):
    """A run whose engine recorded no adapter compute choice ran PEFT's fp32 adapter inputs."""
    store = RunStore(tmp_path / "runs")
    folder = _model_folder(tmp_path)
    run, est, _ = _run_with_peaks(store, folder, alloc_scale=1.0)
    events = [json.loads(x) for x in run.events_path.read_text().splitlines()]
    events[0]["choices"].pop("adapter_compute")
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
    old, _ = estimate_vs_measured(run)
    assert old.setup.autocast is False and est.setup.autocast is True
    assert old.saved_activations > est.saved_activations  # fp32 copies of every adapter's input


def test_runs_without_measurements_or_model_are_skipped(tmp_path):
    store = RunStore(tmp_path / "runs")
    c = RunConfig().replace("model", {"source": "local", "path": str(tmp_path / "gone")})
    run = store.create(c)
    est, meas = estimate_vs_measured(run)
    assert est is None and meas is None
    ov, rows = calibrate([run], save=False)
    assert rows == [] and ov.source == "default"
