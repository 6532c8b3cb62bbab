"""Smaller Train-page and chart details from issue #13.9: empty charts, the hint while starting, curve labels."""

from __future__ import annotations

import time

from studio.core.compare import MethodResult
from studio.ui.pages.compare.curves import OverlayCurves
from studio.ui.widgets.curves import MetricsBuffer, TrainingCurves


def _shows_values(plot, axis: str) -> bool:
    return plot.getPlotItem().getAxis(axis).style["showValues"]


def test_empty_charts_have_no_made_up_axes(qtbot):
    curves = TrainingCurves(horizontal=True)
    qtbot.addWidget(curves)
    for plot in (curves.loss_plot, curves.lr_plot):
        assert not _shows_values(plot, "left") and not _shows_values(plot, "bottom")
        assert not plot.getPlotItem().getAxis("left").autoSIPrefix  # never "loss (x0.001)"
    buffer = MetricsBuffer().add_all([{"type": "step", "step": s, "loss": 2.0 / s, "lr": 1e-4} for s in (1, 2, 3)])
    curves.redraw(buffer)
    assert _shows_values(curves.loss_plot, "left") and not curves.empty_text.isVisible()


def test_starting_shows_the_workers_newest_line_after_a_quiet_while(qtbot, window):
    w = window()
    page = w.page("train")
    page._phase = "Loading the model…"
    page._started_at = time.time()
    page._last_log_line = "Retrying in 8s [Retry 3/5]."
    assert page._starting_text() == "Loading the model…"  # not at once: most starts are quick
    page._started_at = time.time() - 10
    assert page._starting_text() == "Loading the model… · Retrying in 8s [Retry 3/5]."


def test_compare_curves_end_in_their_method_names_with_their_own_line_styles(qtbot):
    curves = OverlayCurves()
    qtbot.addWidget(curves)
    ends = {"lora": 0.0, "dora": 0.01, "ia3": 2.0}  # LoRA and DoRA end together, IA3 far above
    rows = [MethodResult(run_id=f"r{i}", method=m, title=t, state="completed", learning_rate=1e-4,
                         loss_curve=[(s, 3.0 / s + ends[m]) for s in range(1, 6)])
            for i, (m, t) in enumerate((("lora", "LoRA"), ("dora", "DoRA"), ("ia3", "IA3")))]
    curves.redraw(rows, {"lora": "#7c6cff", "dora": "#34d1a0", "ia3": "#f0b429"})
    shown = {v.toPlainText() for v in curves._labels.values() if v.isVisible()}
    assert shown == {"LoRA · DoRA", "IA3"}  # names that would print over each other share one label
    assert all(v.pos().x() == 5.0 for v in curves._labels.values())
    styles = {curves._items[k][1].opts["pen"].style() for k in ("r0", "r1", "r2")}
    assert len(styles) == 3


def test_compare_plots_span_every_step_not_only_the_evaluated_ones(qtbot):
    curves = OverlayCurves()
    qtbot.addWidget(curves)
    rows = [MethodResult(run_id="r0", method="lora", title="LoRA", state="completed", learning_rate=1e-4,
                         loss_curve=[(s, 3.0 / s) for s in range(5, 101, 5)], val_curve=[(50, 2.0), (100, 1.5)])]
    curves.resize(900, 300)
    curves.show()
    curves.redraw(rows, {"lora": "#7c6cff"})
    qtbot.wait(50)
    low, high = curves.loss_plot.getPlotItem().getViewBox().viewRange()[0]
    assert low < 5 and high >= 100  # the validation points (50, 100) once narrowed both plots to 47..100
