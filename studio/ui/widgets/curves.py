"""Training curves: a buffer that takes protocol events and the pyqtgraph plots that draw it.

Arrival and drawing are decoupled: ``MetricsBuffer.add(event)`` only appends (cheap, any rate),
and the owner calls ``TrainingCurves.redraw(buffer)`` from a timer when ``buffer.dirty``. The
loss plot shows the raw loss faintly and an EMA-smoothed line on top (bias-corrected, so the
first points are not dragged towards zero), plus validation loss as dots.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from studio.ui.theme import COLORS

SMOOTHING = 0.9  # EMA weight of the past; 0.9 ~ averaging the last ten points


class MetricsBuffer:
    """Step metrics of one run, appended as events arrive (from a live worker or events.jsonl)."""

    def __init__(self, smoothing: float = SMOOTHING):
        self.smoothing = smoothing
        self.steps: list[float] = []
        self.loss: list[float] = []
        self.loss_ema: list[float] = []
        self.lr: list[float] = []
        self.eval_steps: list[float] = []
        self.eval_loss: list[float] = []
        self.last_step: Optional[dict[str, Any]] = None
        self.plan: Optional[dict[str, Any]] = None
        self.dirty = False
        self._ema = 0.0
        self._ema_n = 0

    def clear(self) -> None:
        self.__init__(self.smoothing)
        self.dirty = True

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "step":
            step, loss = event.get("step"), event.get("loss")
            if not isinstance(step, (int, float)):
                return
            if self.steps and step <= self.steps[-1]:  # a resumed run repeats steps: keep the newest
                while self.steps and self.steps[-1] >= step:
                    self._pop()
            self.last_step = event
            if isinstance(loss, (int, float)) and loss == loss:
                self.steps.append(float(step))
                self.loss.append(float(loss))
                self._ema = self.smoothing * self._ema + (1 - self.smoothing) * float(loss)
                self._ema_n += 1
                self.loss_ema.append(self._ema / (1 - self.smoothing ** self._ema_n))
                lr = event.get("lr")
                self.lr.append(float(lr) if isinstance(lr, (int, float)) else float("nan"))
            self.dirty = True
        elif kind == "eval" and isinstance(event.get("val_loss"), (int, float)):
            self.eval_steps.append(float(event.get("step") or 0))
            self.eval_loss.append(float(event["val_loss"]))
            self.dirty = True
        elif kind == "plan":
            self.plan = event
            self.dirty = True

    def add_all(self, events: Iterable[dict[str, Any]]) -> "MetricsBuffer":
        for e in events:
            self.add(e)
        return self

    def _pop(self) -> None:
        self.steps.pop()
        self.loss.pop()
        self.loss_ema.pop()
        self.lr.pop()
        self._ema_n = len(self.loss_ema)
        if self.loss_ema:
            self._ema = self.loss_ema[-1] * (1 - self.smoothing ** self._ema_n)
        else:
            self._ema = 0.0

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
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.getViewBox().setMouseEnabled(x=True, y=False)
    plot.setMenuEnabled(False)


class TrainingCurves(QWidget):
    """Loss (raw, smoothed, validation) and learning-rate plots, redrawn on request."""

    def __init__(self, parent: QWidget | None = None, horizontal: bool = False):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget()
        _style_plot(self.loss_plot, "Loss", "loss")
        legend = self.loss_plot.addLegend(offset=(-10, 10), labelTextColor=COLORS["muted"])
        legend.setBrush(pg.mkBrush(COLORS["card"]))
        self.raw_curve = self.loss_plot.plot([], [], pen=pg.mkPen(COLORS["accent"] + "55", width=1), name="raw")
        self.ema_curve = self.loss_plot.plot([], [], pen=pg.mkPen(COLORS["accent"], width=2.4), name="smoothed")
        self.eval_curve = self.loss_plot.plot([], [], pen=None, symbol="o", symbolSize=7, symbolBrush=COLORS["mint"],
                                              symbolPen=None, name="validation")
        self.lr_plot = pg.PlotWidget()
        _style_plot(self.lr_plot, "Learning rate", "lr")
        self.lr_curve = self.lr_plot.plot([], [], pen=pg.mkPen(COLORS["mint"], width=2))
        self.lr_plot.setXLink(self.loss_plot)
        lay = QHBoxLayout(self) if horizontal else QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(10)
        lay.addWidget(self.loss_plot, 3)
        lay.addWidget(self.lr_plot, 2 if horizontal else 1)

    def redraw(self, buffer: MetricsBuffer) -> None:
        self.raw_curve.setData(buffer.steps, buffer.loss)
        self.ema_curve.setData(buffer.steps, buffer.loss_ema)
        self.eval_curve.setData(buffer.eval_steps, buffer.eval_loss)
        self.lr_curve.setData(buffer.steps, buffer.lr)
        buffer.dirty = False

    def point_count(self) -> int:
        x, _ = self.ema_curve.getData()
        return 0 if x is None else len(x)
