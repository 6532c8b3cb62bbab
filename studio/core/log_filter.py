"""What of a worker's log a person reads in the GUI: progress bars settled, library deprecation notes dropped.

The worker's log file keeps every byte (worker.log). The GUI's log views show it through
``LogFilter``: a tqdm bar becomes one line when it finishes (its 0% and in-between redraws are
dropped), and Python's DeprecationWarning / FutureWarning / PendingDeprecationWarning notes from
libraries (with the source line Python prints under them) are left out, as are a few known library
notes that do not apply (``_NOISE``): they are addressed to developers, not to someone exporting an
adapter. Errors and tracebacks pass untouched.
"""

from __future__ import annotations

import re
from typing import Optional

# "Loading weights: 100%|##########| 20/20 [00:00<00:00, 11868.43it/s]"
_BAR = re.compile(r"^(?P<label>.*?):?\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<done>[\d.]+[kMG]?)/(?P<total>[\d.]+[kMG]?)\b")
_DEV_WARNING = re.compile(r"(Deprecation|PendingDeprecation|Future)Warning: ")
# Library notes that are wrong or irrelevant for the studio's runs, by their start.
_NOISE = (
    # bitsandbytes on a CPU-only machine asks for an optional package that only speeds up 4-bit CPU inference
    "WARNING bitsandbytes.backends.cpu.ops: Failed to load CPU gemm_4bit_forward",
)


class LogFilter:
    """Feed lines in order; ``feed`` returns the line to show (maybe rewritten) or None to skip it."""

    def __init__(self):
        self._in_warning = False

    def feed(self, line: str) -> Optional[str]:
        line = line.rstrip("\n").rsplit("\r", 1)[-1]  # a bar redrawn in place: its last state
        if self._in_warning:
            if line.startswith((" ", "\t")) or not line.strip():
                return None  # the source line Python prints under a warning, and the blank after it
            self._in_warning = False
        if _DEV_WARNING.search(line):
            self._in_warning = True
            return None
        if line.startswith(_NOISE):
            return None
        bar = _BAR.match(line)
        if bar:
            if bar["pct"] != "100":
                return None
            label = bar["label"].strip() or "done"
            return f"{label}: {bar['done']}/{bar['total']}"
        return line

    def lines(self, lines: list[str]) -> list[str]:
        return [shown for shown in (self.feed(line) for line in lines) if shown is not None]
