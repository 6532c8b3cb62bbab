"""The statistics panel: metric tiles and the tokens-per-row histogram against the max length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from studio.ui.theme import COLORS
from studio.ui.widgets.card import MetricTile, muted

if TYPE_CHECKING:
    from studio.core.data.stats import DataStats


def histogram(lengths: np.ndarray, max_len: int, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(edges, counts) spanning the data and the max length, so the cut-off line is always in view."""
    if lengths.size == 0:
        return np.array([0.0, 1.0]), np.array([0])
    top = max(int(lengths.max()), max_len) + 1
    # Bin width divides max_len, so no bin straddles the cut-off: a bar is either kept or cut.
    width = max_len / max(1, round(max_len / (top / bins)))
    edges = np.arange(0, top + width, width)
    counts, _ = np.histogram(lengths, bins=edges)
    return edges, counts


class StatsView(QWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(12)
        grid = QGridLayout()
        grid.setSpacing(10)
        self.tiles = {key: MetricTile(label) for key, label in (
            ("rows", "Rows"), ("tokens", "Training tokens"), ("steps", "Steps per epoch"), ("truncated", "Truncated"))}
        for i, tile in enumerate(self.tiles.values()):
            grid.addWidget(tile, 0, i)
        lay.addLayout(grid)
        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget(background=COLORS["card"])
        self.plot.setMinimumHeight(200)
        self.plot.setMaximumHeight(260)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        axis_pen = pg.mkPen(COLORS["line"])
        for name in ("left", "bottom"):
            ax = self.plot.getAxis(name)
            ax.setPen(axis_pen)
            ax.setTextPen(pg.mkPen(COLORS["muted"]))
        self.plot.setLabel("bottom", "tokens per row", color=COLORS["muted"])
        self.plot.setLabel("left", "rows", color=COLORS["muted"])
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self._bars_in = pg.BarGraphItem(x0=[], x1=[], height=[], brush=pg.mkBrush(COLORS["accent"]), pen=None)
        self._bars_out = pg.BarGraphItem(x0=[], x1=[], height=[], brush=pg.mkBrush(COLORS["red"]), pen=None)
        self.plot.addItem(self._bars_in)
        self.plot.addItem(self._bars_out)
        self._limit = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(COLORS["amber"], width=2,
                                                                             style=pg.QtCore.Qt.PenStyle.DashLine),
                                      label="max length {value:.0f}",
                                      labelOpts={"position": 0.93, "color": COLORS["amber"], "fill": COLORS["card"],
                                                 "anchors": [(0, 0.5), (0, 0.5)]})
        self.plot.addItem(self._limit)
        lay.addWidget(self.plot)
        self.detail = muted("", role="muted")
        lay.addWidget(self.detail)

    def show_stats(self, s: DataStats, batch_size: int, grad_accum: int) -> None:
        self.tiles["rows"].set(f"{s.train_rows:,}", f"of {s.rows:,} read · {s.val_rows:,} validation")
        self.tiles["tokens"].set(_short(s.train_tokens), f"{_short(s.loss_tokens)} carry loss")
        self.tiles["steps"].set(f"{s.steps_per_epoch:,}", f"batch {batch_size} × accumulation {grad_accum}")
        self.tiles["truncated"].set(f"{s.truncated + s.dropped:,}",
                                    f"{s.tokens_lost:,} tokens lost · {s.dropped:,} dropped")
        edges, counts = histogram(s.lengths, s.max_len)
        inside = edges[1:] <= s.max_len + 1e-9
        self._bars_in.setOpts(x0=edges[:-1][inside], x1=edges[1:][inside] - (edges[1] - edges[0]) * 0.12,
                              height=counts[inside])
        self._bars_out.setOpts(x0=edges[:-1][~inside], x1=edges[1:][~inside] - (edges[1] - edges[0]) * 0.12,
                               height=counts[~inside])
        self._limit.setValue(s.max_len)
        self.plot.setXRange(0, edges[-1], padding=0.01)
        self.plot.setYRange(0, max(int(counts.max()), 1) * 1.1, padding=0)
        parts = [f"{s.duplicates:,} exact duplicates removed", f"{s.skipped:,} rows unusable"]
        summary = s.to_dict()["tokens_per_row"]
        if summary:
            parts.insert(0, f"tokens per row: median {summary['median']:,.0f}, p95 {summary['p95']:,.0f}, "
                            f"max {summary['max']:,}")
        if s.packing and s.packing_efficiency is not None:
            parts.append(f"packed into {s.sequences:,} sequences, {s.packing_efficiency:.0%} full")
        if s.from_cache:
            parts.append("tokens from the cache")
        self.detail.setText(" · ".join(parts))

    def clear(self) -> None:
        for tile in self.tiles.values():
            tile.set("—", "")
        self._bars_in.setOpts(x0=[], x1=[], height=[])
        self._bars_out.setOpts(x0=[], x1=[], height=[])
        self.detail.setText("")


def _short(n: int) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:,}"
