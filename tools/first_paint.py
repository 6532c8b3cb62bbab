"""Measure when the studio's window is really drawn: screenshots of the X display, not a "shown" flag.

    DISPLAY=:99 python tools/first_paint.py [--runs 5] [--close-after 1.0] [--save-frames DIR] [--source DIR]

Starts ``python -m studio`` in a fresh studio home (as on a first launch), grabs the window's
pixels every 30 ms through Xlib and reports, from the process start: when the window is mapped,
when the sidebar shows its labels (bright text pixels in its left 208 px) and when the page area
does. The studio's theme is dark, but an unpainted X window is pure black (0,0,0), so "drawn"
means: the area holds theme-coloured pixels and some text. ``--close-after S`` then closes the
window (WM_DELETE_WINDOW, as a window manager's close button does) S seconds after the page was
drawn and reports whether and when the process exited (issue #13: it sometimes stayed alive).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLE = b"Fine-tuning Studio"
SIDEBAR_W = 208


class _XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
                ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int), ("bitmap_unit", ctypes.c_int),
                ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
                ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int)]


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


class _XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                ("root", ctypes.c_ulong), ("class_", ctypes.c_int), ("bit_gravity", ctypes.c_int),
                ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong),
                ("map_installed", ctypes.c_int), ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


class X:
    """The few Xlib calls the measurement needs."""

    def __init__(self):
        lib = ctypes.util.find_library("X11")
        if not lib:
            raise SystemExit("libX11 is needed (apt install libx11-6)")
        x = self.x = ctypes.CDLL(lib)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                                 ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                                 ctypes.POINTER(ctypes.c_uint)]
        x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
        x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XWindowAttributes)]
        x.XGetImage.restype = ctypes.POINTER(_XImage)
        x.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                                ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
        x.XFlush.argtypes = [ctypes.c_void_p]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XSetErrorHandler.argtypes = [ctypes.c_void_p]
        self._handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)
        x.XSetErrorHandler(ctypes.cast(self._handler, ctypes.c_void_p))  # a window vanishing mid-query is normal
        self.d = x.XOpenDisplay(None)
        if not self.d:
            raise SystemExit(f"cannot open display {os.environ.get('DISPLAY')!r}")
        self.root = x.XDefaultRootWindow(self.d)

    def find_window(self) -> int:
        """The studio's mapped top-level window (searching two levels: a window manager reparents)."""
        for w in self._children(self.root):
            for candidate in (w, *self._children(w)):
                name = ctypes.c_char_p()
                if self.x.XFetchName(self.d, candidate, ctypes.byref(name)) and name.value:
                    found = name.value.startswith(TITLE)
                    self.x.XFree(name)
                    if found and self.attributes(candidate).map_state == 2:  # IsViewable
                        return candidate
        return 0

    def _children(self, w: int) -> list[int]:
        root, parent = ctypes.c_ulong(), ctypes.c_ulong()
        kids, n = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        if not self.x.XQueryTree(self.d, w, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(kids), ctypes.byref(n)):
            return []
        out = [kids[i] for i in range(n.value)]
        if kids:
            self.x.XFree(kids)
        return out

    def attributes(self, w: int) -> _XWindowAttributes:
        attrs = _XWindowAttributes()
        self.x.XGetWindowAttributes(self.d, w, ctypes.byref(attrs))
        return attrs

    def pixels(self, w: int, x: int, y: int, width: int, height: int) -> list[tuple[int, int, int]]:
        """Every 4th pixel of a rectangle of the window, as (r, g, b)."""
        img = self.x.XGetImage(self.d, w, x, y, width, height, 0xFFFFFFFF, 2)  # ZPixmap
        if not img:
            return []
        im = img.contents
        w_px, h_px, bpl, bpp = im.width, im.height, im.bytes_per_line, max(im.bits_per_pixel // 8, 3)
        data = ctypes.string_at(im.data, bpl * h_px)
        self.x.XDestroyImage(img)
        step = 4
        out = []
        for row in range(0, h_px, step):
            line = data[row * bpl:(row + 1) * bpl]
            for col in range(0, w_px, step):
                b, g, r = line[col * bpp], line[col * bpp + 1], line[col * bpp + 2]
                out.append((r, g, b))
        return out

    def close_window(self, w: int) -> None:
        """What a window manager's close button sends: WM_PROTOCOLS / WM_DELETE_WINDOW."""
        ev = _XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = w
        ev.xclient.message_type = self.x.XInternAtom(self.d, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = self.x.XInternAtom(self.d, b"WM_DELETE_WINDOW", 0)
        ev.xclient.data[1] = 0  # CurrentTime
        self.x.XSendEvent(self.d, w, 0, 0, ctypes.byref(ev))
        self.x.XFlush(self.d)


def drawn(pixels: list[tuple[int, int, int]]) -> bool:
    """Theme-coloured (not pure black) and with some text (bright pixels)."""
    if not pixels:
        return False
    coloured = sum(1 for p in pixels if p != (0, 0, 0)) / len(pixels)
    bright = sum(1 for p in pixels if sum(p) > 380)
    return coloured > 0.9 and bright >= 3


def measure(x: X, close_after: float | None, save: Path | None, run_index: int, timeout: float,
            source: Path = ROOT) -> dict:
    home = tempfile.mkdtemp(prefix="studio-first-paint-")
    env = {**os.environ, "STUDIO_HOME": home, "HF_HUB_OFFLINE": "1"}
    env.pop("QT_QPA_PLATFORM", None)
    t0 = time.monotonic()
    log = open(Path(home) / "stderr.txt", "w+b")  # a file, not a pipe: an unread pipe could block the app
    proc = subprocess.Popen([sys.executable, "-m", "studio"], cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log
    try:
        return _follow(x, proc, t0, close_after, save, run_index, timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _follow(x: X, proc: subprocess.Popen, t0: float, close_after: float | None, save: Path | None, run_index: int,
            timeout: float) -> dict:
    result: dict = {}
    win = 0
    while time.monotonic() - t0 < timeout and proc.poll() is None:
        now = time.monotonic() - t0
        if not win:
            win = x.find_window()
            if win:
                result["mapped"] = now
        if win:
            a = x.attributes(win)
            h = max(a.height - 200, 50)
            if "sidebar" not in result and drawn(x.pixels(win, 0, 100, SIDEBAR_W, h)):
                result["sidebar"] = now
            if "page" not in result and drawn(x.pixels(win, SIDEBAR_W + 20, 100, a.width - SIDEBAR_W - 40, h)):
                result["page"] = now
            if "sidebar" in result and "page" in result:
                break
        time.sleep(0.03)
    if save is not None and win:
        save.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", str(win), str(save / f"run{run_index}.png")], check=False)
    if close_after is not None and win and proc.poll() is None:
        time.sleep(close_after)
        closed_at = time.monotonic()
        x.close_window(win)
        try:
            proc.wait(timeout=20)
            result["exit_after_close"] = time.monotonic() - closed_at
        except subprocess.TimeoutExpired:
            result["exit_after_close"] = None
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.log.seek(0)
    err = proc.log.read().decode(errors="replace")
    if "mapped" not in result and err:
        result["stderr"] = err[-400:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--close-after", type=float, default=None, help="close the window S s after it was drawn")
    parser.add_argument("--save-frames", type=Path, default=None, help="save a screenshot of each run's window here")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--source", type=Path, default=ROOT, help="the studio checkout to start (python -m runs it "
                        "from there), e.g. an older commit unpacked with git archive, to compare")
    args = parser.parse_args()
    x = X()
    results = []
    for i in range(args.runs):
        r = measure(x, args.close_after, args.save_frames, i, args.timeout, args.source)
        results.append(r)
        cells = [f"{k} {v:.2f} s" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()]
        print(f"run {i + 1}: " + ", ".join(cells), flush=True)
        time.sleep(1)
    for key in ("mapped", "sidebar", "page"):
        values = [r[key] for r in results if key in r]
        if values:
            print(f"{key:>8}: median {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)})")
    if args.close_after is not None:
        stuck = sum(1 for r in results if r.get("exit_after_close", 0) is None)
        print(f"closed {args.close_after:g} s after the first paint: {len(results) - stuck} of {len(results)} exited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
