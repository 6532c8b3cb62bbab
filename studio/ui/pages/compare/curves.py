"""OverlayCurves: every compared method's loss on one plot (smoothed line, validation as dots)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from studio.core.compare import MethodResult
from studio.ui.theme import COLORS
from studio.ui.widgets.curves import _framed, _style_plot, ema, show_empty as _show_empty, smoothing_for

PALETTE = ("#7c6cff", "#34d1a0", "#f0b429", "#5aa9ff", "#ff6b6b", "#e879f9", "#a3e635", "#fb923c",
           "#22d3ee", "#f472b6", "#94a3b8", "#facc15")


# A line style per method as well as a colour: several methods' curves run close together, and
# colours alone are hard to tell apart (and for colour-blind eyes, some are the same).
DASHES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
SYMBOLS = ("o", "s", "t", "d")


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


class OverlayCurves(QWidget):
    """Training loss (left) and validation loss (right), one colour per method."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.loss_plot = pg.PlotWidget()
        # No legend: the table's method names are drawn in their curve colours, and a legend on a
        # plot of falling curves always covers one of them.
        _style_plot(self.loss_plot, "Training loss (smoothed) — each curve ends in its method's name", "loss")
        self.val_plot = pg.PlotWidget()
        _style_plot(self.val_plot, "Validation loss", "loss")
        self.val_plot.setXLink(self.loss_plot)
        self.empty_text = pg.TextItem("Curves of every method appear here as they train", color=COLORS["faint"],
                                      anchor=(0.5, 0.5))
        self.loss_plot.addItem(self.empty_text)
        self.empty_text.setPos(0.5, 0.5)
        self.val_empty = pg.TextItem("No validation loss yet\n(a validation share on the Data page adds it)",
                                     color=COLORS["faint"], anchor=(0.5, 0.5))
        self.val_plot.addItem(self.val_empty)
        self.val_empty.setPos(0.5, 0.5)
        self._items: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem, pg.PlotDataItem]] = {}
        self._labels: dict[str, pg.TextItem] = {}
        _show_empty(self.loss_plot, self.empty_text, True)
        _show_empty(self.val_plot, self.val_empty, True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(12)
        lay.addWidget(_framed(self.loss_plot), 3)
        lay.addWidget(_framed(self.val_plot), 2)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        # pyqtgraph asks for 480 px per plot; in a scrolling page (which sizes to preferred heights
        # once a wrapped label is present) that would push the curves below the window's edge.
        return QSize(900, 200)

    def clear(self) -> None:
        for raw, smooth, val in self._items.values():
            self.loss_plot.removeItem(raw)
            self.loss_plot.removeItem(smooth)
            self.val_plot.removeItem(val)
        for label in self._labels.values():
            self.loss_plot.removeItem(label)
        self._items.clear()
        self._labels.clear()
        _show_empty(self.loss_plot, self.empty_text, True)
        _show_empty(self.val_plot, self.val_empty, True)

    def redraw(self, rows: list[MethodResult], colors: dict[str, str]) -> None:
        for i, row in enumerate(rows):
            key = row.run_id
            color = colors.get(row.method, COLORS["accent"])
            if key not in self._items:
                dash = DASHES[i % len(DASHES)]
                raw = self.loss_plot.plot([], [], pen=pg.mkPen(color + "40", width=1))
                smooth = self.loss_plot.plot([], [], pen=pg.mkPen(color, width=2.4, style=dash))
                val = self.val_plot.plot([], [], pen=pg.mkPen(color, width=1.6, style=dash), symbol=SYMBOLS[i % len(SYMBOLS)],
                                         symbolSize=7, symbolBrush=color, symbolPen=None)
                # right-aligned just above its curve's end: inside the plot, never past its right edge
                label = pg.TextItem(row.title, color=color, anchor=(1, 1))
                self.loss_plot.addItem(label)
                self._items[key] = (raw, smooth, val)
                self._labels[key] = label
            raw, smooth, val = self._items[key]
            steps = [s for s, _ in row.loss_curve]
            losses = [v for _, v in row.loss_curve]
            raw.setData(steps, losses)
            smoothed = ema(losses, smoothing_for(len(losses)))
            smooth.setData(steps, smoothed)
            val.setData([s for s, _ in row.val_curve], [v for _, v in row.val_curve])
            label = self._labels[key]
            label.setVisible(bool(steps))
            if steps:  # the method's name at the end of its curve: no need to match colours with the table
                label.setPos(steps[-1], smoothed[-1])
        self._merge_close_labels(rows)
        _show_empty(self.loss_plot, self.empty_text, not any(r.loss_curve for r in rows))
        _show_empty(self.val_plot, self.val_empty, not any(r.val_curve for r in rows))
        last = max((s for r in rows for s, _ in r.loss_curve), default=None)
        if last:  # every step on both plots; auto-range let the few evaluated steps narrow both (X-linked)
            for plot in (self.loss_plot, self.val_plot):
                plot.getPlotItem().getViewBox().enableAutoRange(axis=pg.ViewBox.XAxis, enable=False)
                plot.setXRange(0, last, padding=0.02)

    def _merge_close_labels(self, rows: list[MethodResult]) -> None:
        """Curves that end together get one label naming them all, instead of names printed over each other."""
        ends = sorted((lab.pos().y(), key) for key, lab in self._labels.items() if lab.isVisible())
        if not ends:
            return
        span = (ends[-1][0] - ends[0][0]) or 1.0
        titles = {r.run_id: r.title for r in rows}
        groups: list[list[str]] = []
        last_y = None
        for y, key in ends:
            if last_y is not None and y - last_y < 0.06 * span:
                groups[-1].append(key)
            else:
                groups.append([key])
            last_y = y
        for group in groups:
            first = self._labels[group[0]]
            if len(group) == 1:
                first.setText(titles.get(group[0], first.toPlainText()), color=first.color)
                continue
            first.setText(" · ".join(titles.get(k, "") for k in group), color=COLORS["muted"])
            for k in group[1:]:
                self._labels[k].setVisible(False)

    def curve_count(self) -> int:
        return sum(1 for _, smooth, _ in self._items.values() if smooth.getData()[0] is not None
                   and len(smooth.getData()[0]))
