"""The loss curves of a run as a small PNG, drawn in pure Python (no Qt, no matplotlib, no Pillow).

The model card shows this image on the Hugging Face Hub, which does not display SVG images in
model cards, hence pixels: training loss as a blue line, validation loss as orange dots joined by
a thin line, light grid lines at round values with their numbers, and the words "step", "loss",
"train" and "val" in a 3x5 pixel font drawn at twice its size. ``loss_curves_png`` returns the
file's bytes; a run with fewer than two logged steps has no curve to draw and gets None.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Optional, Sequence

Point = tuple[float, float]
Color = tuple[int, int, int]

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 30, 40  # margins around the plot area
SCALE = 2  # font pixels per glyph pixel
BACKGROUND: Color = (255, 255, 255)
GRID: Color = (228, 228, 228)
AXIS: Color = (90, 90, 90)
TEXT: Color = (60, 60, 60)
TRAIN: Color = (31, 119, 180)
VALIDATION: Color = (255, 127, 14)

# 3x5 glyphs, rows top to bottom, for the numbers and words the chart needs.
_GLYPHS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    ".": ("...", "...", "...", "...", ".#."), "-": ("...", "...", "###", "...", "..."),
    "a": ("...", ".##", "#.#", "#.#", ".##"), "e": ("...", ".#.", "###", "#..", ".##"),
    "i": (".#.", "...", ".#.", ".#.", ".#."), "l": ("##.", ".#.", ".#.", ".#.", "###"),
    "n": ("...", "##.", "#.#", "#.#", "#.#"), "o": ("...", ".#.", "#.#", "#.#", ".#."),
    "p": ("...", "##.", "#.#", "##.", "#.."), "r": ("...", "#.#", "##.", "#..", "#.."),
    "s": ("...", ".##", ".#.", "..#", "##."), "t": (".#.", "###", ".#.", ".#.", "..#"),
    "v": ("...", "#.#", "#.#", "#.#", ".#."), " ": ("...",) * 5,
}
_ADVANCE = 4 * SCALE  # glyph width plus one pixel of space


def loss_curves_png(train: Sequence[Point], validation: Sequence[Point] = ()) -> Optional[bytes]:
    """The chart of ``train`` and ``validation`` (step, loss) points as PNG bytes; None with < 2 steps."""
    train = [(x, y) for x, y in train if math.isfinite(y)]
    validation = [(x, y) for x, y in validation if math.isfinite(y)]
    if len(train) < 2:
        return None
    canvas = _Canvas(WIDTH, HEIGHT)
    xs = [x for x, _ in train + validation]
    ys = [y for _, y in train + validation]
    x_ticks = [t for t in _nice_ticks(min(xs), max(xs)) if t == int(t)]
    y_ticks = _nice_ticks(min(ys), max(ys))
    x0, x1 = min(xs[0], x_ticks[0]), max(max(xs), x_ticks[-1])
    y0, y1 = min(min(ys), y_ticks[0]), max(max(ys), y_ticks[-1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> int:
        return LEFT + round((x - x0) / ((x1 - x0) or 1) * plot_w)

    def py(y: float) -> int:
        return TOP + plot_h - round((y - y0) / ((y1 - y0) or 1) * plot_h)

    decimals = _decimals(y_ticks)
    for t in y_ticks:
        canvas.line(LEFT, py(t), LEFT + plot_w, py(t), GRID)
        label = f"{t:.{decimals}f}"
        canvas.text(LEFT - 6 - len(label) * _ADVANCE, py(t) - 5, label, TEXT)
    for t in x_ticks:
        canvas.line(px(t), TOP, px(t), TOP + plot_h, GRID)
        label = str(int(t))
        canvas.text(px(t) - len(label) * _ADVANCE // 2, TOP + plot_h + 8, label, TEXT)
    canvas.line(LEFT, TOP, LEFT, TOP + plot_h, AXIS)
    canvas.line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, AXIS)
    canvas.text(LEFT + plot_w - 4 * _ADVANCE, HEIGHT - 12, "step", TEXT)
    canvas.text(8, 8, "loss", TEXT)
    for (xa, ya), (xb, yb) in zip(train, train[1:]):
        canvas.line(px(xa), py(ya), px(xb), py(yb), TRAIN, width=2)
    for (xa, ya), (xb, yb) in zip(validation, validation[1:]):
        canvas.line(px(xa), py(ya), px(xb), py(yb), VALIDATION)
    for x, y in validation:
        canvas.box(px(x) - 3, py(y) - 3, 7, 7, VALIDATION)
    legend_x = WIDTH - RIGHT - 20 * _ADVANCE
    canvas.box(legend_x, 12, 14, 4, TRAIN)
    canvas.text(legend_x + 20, 9, "train", TEXT)
    if validation:
        canvas.box(legend_x + 10 * _ADVANCE + 4, 11, 7, 7, VALIDATION)
        canvas.text(legend_x + 10 * _ADVANCE + 18, 9, "val", TEXT)
    return canvas.png()


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) that cover [low, high] in about ``count`` steps."""
    if high - low <= 0:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    t = first
    while t < high + step * 0.999:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _decimals(ticks: Sequence[float]) -> int:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return max(0, -math.floor(math.log10(step) + 1e-9))


class _Canvas:
    """An RGB pixel buffer with the few drawing operations the chart needs."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def dot(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = (y * self.width + x) * 3
            self.pixels[i:i + 3] = bytes(color)

    def box(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        for yy in range(y, y + h):
            for xx in range(x, x + w):
                self.dot(xx, yy, color)

    def line(self, xa: int, ya: int, xb: int, yb: int, color: Color, width: int = 1) -> None:
        """Bresenham's line, each point stamped as a width x width square."""
        dx, dy = abs(xb - xa), -abs(yb - ya)
        sx, sy = (1 if xa < xb else -1), (1 if ya < yb else -1)
        err = dx + dy
        while True:
            self.box(xa, ya, width, width, color)
            if xa == xb and ya == yb:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                xa += sx
            if e2 <= dx:
                err += dx
                ya += sy

    def text(self, x: int, y: int, text: str, color: Color) -> None:
        for ch in text:
            for row, bits in enumerate(_GLYPHS.get(ch, _GLYPHS[" "])):
                for col, bit in enumerate(bits):
                    if bit == "#":
                        self.box(x + col * SCALE, y + row * SCALE, SCALE, SCALE, color)
            x += _ADVANCE

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(b"\0" + bytes(self.pixels[y * stride:(y + 1) * stride]) for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))
