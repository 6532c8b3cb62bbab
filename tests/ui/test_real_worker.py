"""One end-to-end click-through with the real worker on the embedded demo (slow: it trains)."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio.core.paths import demo_model_dir


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_train_demo_see_curves_stop_and_adapter_is_saved(qtbot, window):
    if not (demo_model_dir() / "config.json").exists():
        pytest.skip("the demo model is not built (python resources/build_demo.py)")
    w = window(stop_timeout_s=60)
    cm = w.config_model
    cm.set("training.max_steps", 400)  # far more than we wait for: Stop ends it
    cm.set("training.logging_steps", 1)
    cm.set("training.eval_steps", 0)
    w.navigate("train")
    page = w.page("train")
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.curves.point_count() >= 3, timeout=60_000)
    assert page.buffer.loss[0] > 0
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_training(), timeout=30_000)
    run = page.run
    assert run.state == "stopped", page.banner.text()
    assert page.banner.text().startswith("Stopped after finishing step") and "adapter saved" in page.banner.text()
    config = json.loads((run.adapter_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert any(p.suffix == ".safetensors" for p in run.adapter_dir.iterdir())
