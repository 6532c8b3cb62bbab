"""VramPanel: live estimate of the ConfigModel's run, GPU choice, one-click suggestions."""

from __future__ import annotations

import time

from studio.core import gpu
from studio.core.config import RunConfig
from studio.core.vram import GIB
from studio.ui.config_model import ConfigModel
from studio.ui.widgets.vram_panel import DETECTED, VramPanel


def _config(**training) -> RunConfig:
    c = RunConfig().replace("model", {"source": "hub", "path": "meta-llama/Llama-3.1-8B"})
    for k, v in training.items():
        c = c.replace(f"training.{k}", v)
    return c


def _panel(qtbot, config: RunConfig, card: str = "RTX 4090 24GB") -> tuple[VramPanel, ConfigModel]:
    model = ConfigModel(config)
    panel = VramPanel(model)
    qtbot.addWidget(panel)
    panel.set_target_name(card)
    panel.refresh()
    return panel, model


def test_updates_live_on_every_change(qtbot):
    panel, model = _panel(qtbot, _config(batch_size=1, max_seq_len=512, gradient_checkpointing="on"),
                          card="RTX 5090 32GB")
    first = panel.estimate.device_used
    assert panel.badge.text() == "FITS"
    assert "headroom" in panel.verdict_text()
    model.set("training.batch_size", 4)
    qtbot.waitUntil(lambda: panel.estimate.device_used > first, timeout=2000)
    assert panel.total_label.text().endswith("GB")


def test_doesnt_fit_offers_suggestions_that_apply(qtbot):
    panel, model = _panel(qtbot, _config(batch_size=8, max_seq_len=4096, loss_impl="standard"))
    assert panel.badge.text() == "DOESN'T FIT"
    assert "over" in panel.verdict_text()
    assert panel.suggestion_buttons and panel.suggestions[0].changes == {"training.loss_impl": "auto"}
    before = panel.estimate.device_used
    panel.suggestion_buttons[0].click()
    assert model.config.training.loss_impl == "auto"
    assert panel.estimate.device_used < before
    fitting = next(i for i, s in enumerate(panel.suggestions) if s.fits)
    panel.suggestion_buttons[fitting].click()
    qtbot.waitUntil(lambda: panel.badge.text() in ("FITS", "TIGHT"), timeout=2000)
    assert not panel.suggestion_buttons


def test_changing_the_gpu_changes_the_verdict(qtbot):
    panel, _ = _panel(qtbot, _config(batch_size=4, max_seq_len=2048), card="RTX 3060 12GB")
    assert panel.badge.text() == "DOESN'T FIT"
    panel.set_target_name("H100 80GB")
    assert panel.badge.text() == "FITS"
    assert panel.target.total_bytes > 70 * GIB


def test_detected_gpu_is_offered_first_with_its_free_memory(qtbot):
    gpu.use_fake([gpu.GpuState(0, "NVIDIA GeForce RTX 4090", mem_used=4 * GIB, mem_total=24 * GIB)])
    panel, _ = _panel(qtbot, _config(), card=DETECTED)
    assert panel.gpu_combo.itemData(0) == DETECTED
    assert "4090" in panel.gpu_combo.itemText(0)
    assert panel.target.detected and panel.target.budget_bytes < 20 * GIB


def test_unknown_model_shows_why_instead_of_crashing(qtbot):
    panel, model = _panel(qtbot, _config())
    model.set("model", {"source": "local", "path": "/nonexistent/model"})
    panel.refresh()
    assert panel.estimate is None
    assert "No estimate" in panel.verdict_text() and "does not exist" in panel.verdict_text()
    assert not panel.suggestion_buttons


def test_demo_model_estimates(qtbot):
    panel, _ = _panel(qtbot, RunConfig())
    assert panel.estimate is not None and panel.estimate.device_used > 0


def test_refresh_is_fast_enough_for_typing(qtbot):
    panel, model = _panel(qtbot, _config(batch_size=8, max_seq_len=4096, loss_impl="standard"))
    t0 = time.perf_counter()
    for _ in range(5):
        panel.refresh()
    assert (time.perf_counter() - t0) / 5 < 0.15


def test_cpu_runs_say_so(qtbot):
    panel, model = _panel(qtbot, _config(device="cpu"))
    assert "CPU" in panel.verdict_text() and panel.badge.isHidden()


def test_a_memory_limit_becomes_the_bar_the_run_must_fit(qtbot):
    panel, model = _panel(qtbot, _config(batch_size=1, max_seq_len=512), card="H100 80GB")
    assert panel.badge.text() == "FITS" and "usable" in panel.budget_label.text()
    model.set("training.memory_limit_gb", 8.0)
    qtbot.waitUntil(lambda: "your limit" in panel.budget_label.text(), timeout=2000)
    assert panel.badge.text() == "DOESN'T FIT" and "over your memory limit" in panel.verdict_text()
