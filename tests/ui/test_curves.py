"""The curve buffer and plots: smoothing, resumed steps, and drawing speed on long runs."""

from __future__ import annotations

import random
import time

from studio.ui.widgets.curves import MetricsBuffer, TrainingCurves, ema


def test_ema_is_bias_corrected_and_adapts_to_length():
    assert ema([4.0, 4.0, 4.0], 0.9) == [4.0, 4.0, 4.0]  # no drag towards zero at the start
    b = MetricsBuffer()
    for i in range(1, 13):
        b.add({"type": "step", "step": i, "loss": 10.0 / i, "lr": 1e-3})
    # a short run is smoothed lightly: the smoothed end stays near the raw end
    assert abs(b.loss_ema[-1] - b.loss[-1]) < 0.5


def test_resumed_steps_replace_the_tail_and_eval_points_are_kept():
    b = MetricsBuffer()
    for i in (1, 2, 3, 4):
        b.add({"type": "step", "step": i, "loss": 1.0, "lr": 0.1})
    b.add({"type": "eval", "step": 4, "val_loss": 0.9})
    for i in (3, 4, 5):  # resumed from a checkpoint at step 2
        b.add({"type": "step", "step": i, "loss": 2.0, "lr": 0.1})
    assert b.steps == [1, 2, 3, 4, 5] and b.loss == [1.0, 1.0, 2.0, 2.0, 2.0]
    assert b.eval_loss == [0.9] and len(b.loss_ema) == 5


def test_a_long_noisy_run_redraws_quickly(qtbot):
    """20k noisy points once took tens of seconds (antialiased jagged lines); now well under a second."""
    curves = TrainingCurves(horizontal=True)
    qtbot.addWidget(curves)
    curves.resize(1100, 420)
    curves.show()
    b = MetricsBuffer()
    for i in range(1, 20_001):
        b.add({"type": "step", "step": i, "loss": 2 + random.random(), "lr": 1e-4})
    t = time.time()
    curves.redraw(b)
    curves.repaint()
    qtbot.wait(10)
    assert curves.point_count() == 20_000
    assert time.time() - t < 3.0
