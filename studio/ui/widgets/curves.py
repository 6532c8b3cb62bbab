"""Training curves: a buffer that takes protocol events and the pyqtgraph plots that draw it.

Arrival and drawing are decoupled: ``MetricsBuffer.add(event)`` only appends (cheap, any rate),
and the owner calls ``TrainingCurves.redraw(buffer)`` from a timer when ``buffer.dirty``. The
loss plot shows the raw loss faintly and an EMA-smoothed line on top, plus validation loss as
dots. The EMA is bias-corrected (the first points are not dragged towards zero) and its weight
grows with the number of points, so a short run is not drawn lagging far behind its own loss.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pyqtgraph as pg
from PySide6.QtWidgets import QFrame, QHBoxLayout, QVBoxLayout, QWidget

from studio.ui.theme import COLORS

MAX_SMOOTHING = 0.95  # EMA weight of the past for long runs (~ the last twenty points)
AA_MAX_POINTS = 5000  # above this even the smoothed line is drawn without antialiasing (speed)
SMOOTHING_POINTS = 10  # weight = 1 - 10/n: about a tenth of the run is averaged, up to the max


def smoothing_for(n: int) -> float:
    return max(0.0, min(MAX_SMOOTHING, 1.0 - SMOOTHING_POINTS / n)) if n else 0.0


def ema(values: list[float], weight: float) -> list[float]:
    """Bias-corrected exponential moving average (as TensorBoard draws it)."""
    out, acc = [], 0.0
    for i, v in enumerate(values, 1):
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight ** i) if weight else v)
    return out


class MetricsBuffer:
    """Step metrics of one run, appended as events arrive (from a live worker or events.jsonl)."""

    def __init__(self):
        self.steps: list[float] = []
        self.loss: list[float] = []
        self.lr: list[float] = []
        self.eval_steps: list[float] = []
        self.eval_loss: list[float] = []
        self.last_step: Optional[dict[str, Any]] = None
        self.plan: Optional[dict[str, Any]] = None
        self.dirty = False
        self._ema_cache: tuple[int, list[float]] = (0, [])

    def clear(self) -> None:
        self.__init__()
        self.dirty = True

    @property
    def loss_ema(self) -> list[float]:
        n = len(self.loss)
        if self._ema_cache[0] != n:
            self._ema_cache = (n, ema(self.loss, smoothing_for(n)))
        return self._ema_cache[1]

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "step":
            step, loss = event.get("step"), event.get("loss")
            if not isinstance(step, (int, float)):
                return
            while self.steps and self.steps[-1] >= step:  # a resumed run repeats steps: keep the newest
                self.steps.pop()
                self.loss.pop()
                self.lr.pop()
                self._ema_cache = (-1, [])
            self.last_step = event
            if isinstance(loss, (int, float)) and loss == loss:
                self.steps.append(float(step))
                self.loss.append(float(loss))
                lr = event.get("lr")
                self.lr.append(float(lr) if isinstance(lr, (int, float)) else float("nan"))
            self.dirty = True
        elif kind == "eval" and isinstance(event.get("val_loss"), (int, float)):
            step = float(event.get("step") or 0)
            while self.eval_steps and self.eval_steps[-1] >= step:  # a resumed run re-evaluates: keep the newest
                self.eval_steps.pop()
                self.eval_loss.pop()
            self.eval_steps.append(step)
            self.eval_loss.append(float(event["val_loss"]))
            self.dirty = True
        elif kind == "plan":
            self.plan = event
            self.dirty = True

    def add_all(self, events: Iterable[dict[str, Any]]) -> "MetricsBuffer":
        for e in events:
            self.add(e)
        return self

    @property
    def final_loss(self) -> Optional[float]:
        return self.loss_ema[-1] if self.loss_ema else None


def _style_plot(plot: pg.PlotWidget, title: str, y_label: str) -> None:
    plot.setBackground(COLORS["card"])
    item = plot.getPlotItem()
    item.setTitle(f"<span style='color:{COLORS['muted']};font-size:11pt'>{title}</span>")
    item.showGrid(x=True, y=True, alpha=0.12)
    item.setLabel("bottom", "step", color=COLORS["faint"])
    item.setLabel("left", y_label, color=COLORS["faint"])
    for axis in ("left", "bottom"):
        ax = item.getAxis(axis)
        ax.setPen(pg.mkPen(COLORS["line"]))
        ax.setTextPen(pg.mkPen(COLORS["muted"]))
        ax.enableAutoSIPrefix(False)  # "loss (x0.001)" over 200..800 reads worse than 0.2..0.8
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.getViewBox().setMouseEnabled(x=True, y=False)
    plot.setMenuEnabled(False)


def show_empty(plot: pg.PlotWidget, text: Optional[pg.TextItem], empty: bool) -> None:
    """An empty plot gets a fixed unit range and no numbers: auto-range over nothing draws made-up axes
    (-100..100, "loss (x0.001)")."""
    if text is not None:
        text.setVisible(empty)
    item = plot.getPlotItem()
    for axis in ("left", "bottom"):
        item.getAxis(axis).setStyle(showValues=not empty)
    if empty:
        item.disableAutoRange()
        item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    else:
        item.enableAutoRange()


def _framed(plot: pg.PlotWidget) -> QFrame:
    frame = QFrame()
    frame.setObjectName("PlotFrame")
    lay = QVBoxLayout(frame)
    lay.setContentsMargins(8, 8, 12, 8)
    lay.addWidget(plot)
    return frame


class TrainingCurves(QWidget):
    """Loss (raw, smoothed, validation) and learning-rate plots, redrawn on request."""

    def __init__(self, parent: QWidget | None = None, horizontal: bool = False):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget()
        _style_plot(self.loss_plot, "Loss", "loss")
        legend = self.loss_plot.addLegend(offset=(-10, 10), labelTextColor=COLORS["muted"])
        legend.setBrush(pg.mkBrush(COLORS["card"]))
        # Antialiasing a jagged line is very slow in Qt's raster engine (seconds for a few
        # thousand noisy points), so the raw loss is drawn without it, the smooth lines with it.
        self.raw_curve = self.loss_plot.plot([], [], pen=pg.mkPen(COLORS["accent"] + "80", width=1), name="raw",
                                             antialias=False)
        self.ema_curve = self.loss_plot.plot([], [], pen=pg.mkPen(COLORS["accent"], width=2.4), name="smoothed")
        self.eval_curve = self.loss_plot.plot([], [], pen=None, symbol="o", symbolSize=7, symbolBrush=COLORS["mint"],
                                              symbolPen=None, name="validation")
        self.lr_plot = pg.PlotWidget()
        _style_plot(self.lr_plot, "Learning rate", "lr")
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen(COLORS["mint"], width=2))
        self.lr_plot.setXLink(self.loss_plot)
        self.empty_text = pg.TextItem("Curves appear here once a run reports its first steps", color=COLORS["faint"],
                                      anchor=(0.5, 0.5))
        self.loss_plot.addItem(self.empty_text)
        self.empty_text.setPos(0.5, 0.5)
        lay = QHBoxLayout(self) if horizontal else QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(12)
        lay.addWidget(_framed(self.loss_plot), 3)
        lay.addWidget(_framed(self.lr_plot), 2 if horizontal else 1)
        self.set_empty(True)

    def redraw(self, buffer: MetricsBuffer) -> None:
        smooth_aa = len(buffer.steps) <= AA_MAX_POINTS
        self.raw_curve.setData(buffer.steps, buffer.loss)
        self.ema_curve.setData(buffer.steps, buffer.loss_ema, antialias=smooth_aa)
        self.eval_curve.setData(buffer.eval_steps, buffer.eval_loss)
        self.lr_curve.setData(buffer.steps, buffer.lr, antialias=smooth_aa)
        self.set_empty(not buffer.steps)
        buffer.dirty = False

    def set_empty(self, empty: bool) -> None:
        show_empty(self.loss_plot, self.empty_text, empty)
        show_empty(self.lr_plot, None, empty)

    def point_count(self) -> int:
        """Points in the loss curve's data (what is drawn may be downsampled)."""
        x = self.ema_curve.xData
        return 0 if x is None else len(x)
