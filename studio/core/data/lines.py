"""Reading a data file's lines and JSON values safely: bounded memory, and every failure a sentence.

``bounded_lines`` hands out a file's lines but never holds one longer than the cap: such a line is
skipped in 1 MB pieces and reported by its length, so a 50 MB line costs 1 MB, not gigabytes of
parsed objects. ``parse_json`` turns the ways Python's json fails besides a syntax error (nesting
deeper than the interpreter's recursion allows, integers of more than 4,300 digits) into
``JsonValueError`` with a plain message. ``encoding_problem`` recognises UTF-16 files, and
``lines_within`` checks a file for over-long lines without reading it.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

_SKIP_PIECE = 1 << 20
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class LongLine:
    """A line that was over the cap: only its length was read."""

    size: int

    def describe(self, cap: int) -> str:
        return f"the line is {mb(self.size)} long, over the {mb(cap)} a row may take"


def mb(n: int) -> str:
    """A size for people: 50.0 MB, 59 kB, 4.9 kB, 1,000 bytes."""
    if n >= 2**20:
        return f"{n / 2**20:,.1f} MB"
    if n >= 10 * 2**10:
        return f"{n / 2**10:,.0f} kB"
    return f"{n / 2**10:.1f} kB" if n >= 2**10 else f"{n:,} bytes"


def bounded_lines(f: BinaryIO, cap: int) -> Iterator[tuple[int, bytes | LongLine]]:
    """(line number, the line's bytes with its newline) or (line number, LongLine) for a line over ``cap`` bytes."""
    lineno = 0
    while True:
        raw = f.readline(cap + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) <= cap or raw.endswith(b"\n"):
            yield lineno, raw
            continue
        size = len(raw)
        del raw
        while True:  # the rest of the line, a piece at a time, never held whole
            piece = f.readline(_SKIP_PIECE)
            size += len(piece)
            if not piece or piece.endswith(b"\n"):
                break
        yield lineno, LongLine(size)


# Files that are not text at all, by their first bytes: what they are and what to do instead.
_NOT_TEXT = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "pick the dataset file itself"),
    (b"\xff\xd8\xff", "a JPEG image", "pick the dataset file itself"),
    (b"GIF8", "a GIF image", "pick the dataset file itself"),
    (b"%PDF", "a PDF document", "export its text to .txt or its rows to .jsonl/.csv first"),
    (b"PK\x03\x04", "a ZIP archive (also .xlsx or .docx)", "unpack it, or save a spreadsheet as .csv"),
    (b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip FILE)"),
    (b"PAR1", "a Parquet file", "give it the .parquet extension"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table to .csv or .jsonl"),
    (b"\x7fELF", "a program", "pick the dataset file itself"),
)


def encoding_problem(head: bytes) -> Optional[str]:
    """Why a file that starts with ``head`` can't be read as UTF-8 text, when the reason is what it is."""
    for magic, what, fix in _NOT_TEXT:
        if head.startswith(magic):
            return f"the file is {what}, not text data; {fix}"
    if head.startswith(_UTF16_BOMS) or _alternate_nuls(head):
        return ("the file is UTF-16 encoded, not UTF-8. Re-save it as UTF-8 (e.g. iconv -f utf-16 -t utf-8 "
                "in.jsonl > out.jsonl)")
    return None


def _alternate_nuls(head: bytes) -> bool:
    """UTF-16 text without a BOM: ASCII characters leave every other byte zero."""
    for half in (head[0::2], head[1::2]):
        if len(half) >= 8 and half.count(0) >= 0.9 * len(half):
            return True
    return False


class JsonValueError(ValueError):
    """Valid JSON syntax that Python can't turn into values; ``pos`` is a character offset when known."""

    def __init__(self, msg: str, pos: Optional[int] = None):
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


_STRING = r'"(?:[^"\\]|\\.)*"'
_BRACKETS = re.compile(_STRING + r"|[\[\]{}]")


def parse_json(text: str) -> Any:
    """json.loads; JSONDecodeError for bad syntax, JsonValueError for too deep nesting or too long a number."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JsonValueError("nested deeper than Python can read (about 1,000 levels of [ or {)",
                             _too_deep_at(text)) from None
    except ValueError as e:  # json raises a plain ValueError only for an integer past the digit limit
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
        raise JsonValueError(f"a number with more than {limit:,} digits, too long to read ({e})",
                             _long_number_at(text, limit)) from None


def _too_deep_at(text: str, depth: int = 900) -> Optional[int]:
    level = 0
    for m in _BRACKETS.finditer(text):
        c = m.group()
        if c in "[{":
            level += 1
            if level > depth:
                return m.start()
        elif c in "]}":
            level -= 1
    return None


def _long_number_at(text: str, limit: int) -> Optional[int]:
    for m in re.finditer(_STRING + r"|-?\d{%d,}" % (limit + 1), text):
        if not m.group().startswith('"'):
            return m.start()
    return None


def line_of(text: str, pos: Optional[int]) -> Optional[int]:
    return None if pos is None else text.count("\n", 0, pos) + 1


def lines_within(path: Path, cap: int) -> bool:
    """No line of the file is longer than ``cap`` bytes. One rfind per ``cap`` bytes of a memory map: a
    GB-sized file is checked in milliseconds, touching a page or two per step."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= cap:
            return True
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            start = 0
            while size - start > cap:
                last = m.rfind(b"\n", start, start + cap + 1)
                if last < 0:
                    return False
                start = last + 1
    return True
