"""One reader per file type, each a generator of (line, row) that reports what it can't read.

A reader never raises for one bad line or row: it appends a Problem naming the file and the line
(or row) and goes on. It raises DataError, naming the file and the line where there is one, only
when nothing more can be read: the file is not UTF-8, not Parquet, or a JSON document that Python
can't parse. No line longer than MAX_LINE_BYTES is held in memory (see lines.bounded_lines).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from studio.core.data.errors import DataError, Problem
from studio.core.data.lines import (JsonValueError, LongLine, bounded_lines, encoding_problem, line_of, mb,
                                    parse_json)

MAX_LINE_BYTES = 8 << 20  # a row's line (and a .txt paragraph) may take this much; ~2M tokens, past any context
HOPELESS_AFTER = 10_000  # skipped rows; past this, a file with ten times more of them than good rows is given up
_BOM = b"\xef\xbb\xbf"
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")  # a CR not followed by LF ends a line, as in universal-newline mode
_REENCODE = "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 in.jsonl > out.jsonl)"


def check_encoding(f: BinaryIO, path: Path) -> None:
    """DataError when the file is UTF-16 or not text at all (an image, an archive): every line would fail on its own."""
    head = f.read(4096)
    f.seek(0)
    why = encoding_problem(head)
    if why:
        raise DataError(f"{path}: {why}.")


class Tally:
    """A file's skipped rows, reported into ``problems``, against its good ones; gives up on a hopeless file.

    A file with ten times more bad rows than good ones, past HOPELESS_AFTER (a CSV saved as .jsonl, a
    binary file), raises DataError: reporting each of its million lines would take gigabytes.
    """

    def __init__(self, path: Path, problems: list[Problem], kind: str):
        self.path = path
        self.problems = problems
        self.kind = kind
        self.rows = 0
        self.skipped = 0
        self.first: Optional[Problem] = None

    def skip(self, message: str, line: int) -> None:
        problem = Problem(message, str(self.path), line)
        self.problems.append(problem)
        self.first = self.first or problem
        self.skipped += 1
        if self.skipped >= HOPELESS_AFTER and self.skipped > 10 * self.rows:
            raise DataError(f"{self.path}: {self.skipped:,} rows can't be used and {self.rows:,} can, so the rest of "
                            f"the file was not read. Is it really {self.kind}? The first: {self.first}")


# ---- JSON Lines and JSON -------------------------------------------------------------------------

def read_jsonl(path: Path, problems: list[Problem], unit: str) -> Iterator[tuple[int, dict]]:
    cap = MAX_LINE_BYTES
    tally = Tally(path, problems, "JSON Lines (one object per line)")
    with path.open("rb") as f:
        check_encoding(f, path)
        for lineno, raw in bounded_lines(f, cap):
            if isinstance(raw, LongLine):
                tally.skip(f"{raw.describe(cap)}; row skipped without reading it. Split or shorten that line.", lineno)
                continue
            obj = _jsonl_object(raw[3:] if lineno == 1 and raw.startswith(_BOM) else raw, lineno, tally)
            if obj is not None:
                tally.rows += 1
                yield lineno, obj


def _jsonl_object(raw: bytes, lineno: int, tally: Tally) -> Optional[dict]:
    if not raw.strip():
        return None
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        tally.skip(f"bytes that are not UTF-8 (column {e.start + 1}); row skipped. {_REENCODE}.", lineno)
        return None
    try:
        obj = parse_json(line)
    except json.JSONDecodeError as e:
        hint = "The line holds NUL bytes: is the file UTF-16? Re-save it as UTF-8." if "\x00" in line \
            else "Fix or delete that line."
        tally.skip(f"malformed JSON ({e.msg.removesuffix(' at')} at column {e.colno}); row skipped. " + hint, lineno)
        return None
    except JsonValueError as e:
        tally.skip(f"{e.msg}; row skipped. Fix or delete that line.", lineno)
        return None
    if not isinstance(obj, dict):
        tally.skip(f"expected a JSON object, got {type(obj).__name__}; row skipped.", lineno)
        return None
    return obj


def read_whole_text(path: Path) -> str:
    raw = path.read_bytes()
    why = encoding_problem(raw[:4096])
    if why:
        raise DataError(f"{path}: {why}.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 (at byte {e.start}). "
                        "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from e


def read_json(path: Path, problems: list[Problem], unit: str) -> Iterator[tuple[int, dict]]:
    text = read_whole_text(path)
    if not text.strip():
        problems.append(Problem("the file holds only whitespace; ignored.", str(path), severity="error"))
        return
    try:
        obj = parse_json(text)
    except (json.JSONDecodeError, JsonValueError) as e:
        if _looks_like_jsonl(text):
            # A .json file that is really JSON Lines: read it as such rather than give up.
            yield from read_jsonl(path, problems, unit)
            return
        raise _json_error(path, text, e) from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list):
        raise DataError(f"{path}: expected a JSON array of objects (or {{\"data\": [...]}}); "
                        f"the file holds a single {type(obj).__name__}.")
    tally = Tally(path, problems, "a JSON array of objects")
    for i, item in enumerate(obj, start=1):
        if isinstance(item, dict):
            tally.rows += 1
            yield i, item
        else:
            tally.skip(f"item {i} is {type(item).__name__}, not an object; skipped.", i)


def _json_error(path: Path, text: str, e: ValueError) -> DataError:
    if isinstance(e, json.JSONDecodeError):
        return DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno}). "
                         "Fix that line, or save the data as JSON Lines (one object per line).")
    line = line_of(text, getattr(e, "pos", None))
    where = f"{path}:{line}" if line else str(path)
    return DataError(f"{where}: {getattr(e, 'msg', e)}. Fix that value, or save the data as JSON Lines "
                     "(one object per line), where only its row would be skipped.")


def _looks_like_jsonl(text: str) -> bool:
    """Two or more of the first five lines are JSON objects on their own."""
    lines, start = [], 0
    while len(lines) < 5 and start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if text[start:end].strip():
            lines.append(text[start:end])
        start = end + 1
    objects = 0
    for ln in lines:
        try:
            objects += isinstance(parse_json(ln), dict)
        except ValueError:
            pass
    return len(lines) > 1 and objects >= 2


# ---- CSV and TSV --------------------------------------------------------------------------------

class _Unreadable(Exception):
    """A CSV line the reader skips (too long); the csv module starts afresh at the next line."""


class _CsvLines:
    """The csv module's input: decoded lines, a bare CR ending a line; ``line`` counts what was handed out."""

    def __init__(self, f: BinaryIO, path: Path, cap: int):
        self._lines = bounded_lines(f, cap)
        self._pending: list[str] = []
        self._path = path
        self._cap = cap
        self.line = 0

    def __iter__(self) -> "_CsvLines":
        return self

    def __next__(self) -> str:
        if not self._pending:
            self._pending = self._pieces()
        self.line += 1
        return self._pending.pop()

    def _pieces(self) -> list[str]:
        number, raw = next(self._lines)
        if isinstance(raw, LongLine):
            self.line += 1
            raise _Unreadable(raw.describe(self._cap))
        if number == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{self._path}:{self.line + 1}: bytes that are not UTF-8 (column {e.start + 1}). "
                            "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from e
        return [p for p in reversed(_BARE_CR.split(text)) if p]


def read_csv(path: Path, problems: list[Problem], unit: str) -> Iterator[tuple[int, dict]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    cap = MAX_LINE_BYTES
    csv.field_size_limit(max(csv.field_size_limit(), cap))  # a long cell is data; the line cap bounds memory
    with path.open("rb") as fb:
        check_encoding(fb, path)
        lines = _CsvLines(fb, path, cap)
        reader = csv.reader(lines, delimiter=delimiter)
        header = _csv_header(reader, path, problems)
        if header is None:
            return
        tally = Tally(path, problems, "CSV" if delimiter == "," else "TSV (tab-separated)")
        while True:
            lineno = lines.line + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except (csv.Error, _Unreadable) as e:
                tally.skip(f"{_csv_reason(e)}; row skipped.", lineno)
                continue
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                tally.skip(f"has {len(values)} fields, the header has {len(header)}; row skipped. "
                           "Quote fields that contain the delimiter.", lineno)
                continue
            tally.rows += 1
            yield lineno, dict(zip(header, values))


def _csv_header(reader, path: Path, problems: list[Problem]) -> Optional[list[str]]:
    try:
        header = next(reader)
    except StopIteration:
        problems.append(Problem("the file has no header row; ignored.", str(path), 1, "error"))
        return None
    except (csv.Error, _Unreadable) as e:
        problems.append(Problem(f"the header row can't be read: {_csv_reason(e)}; file ignored. The first line "
                                "must name the columns.", str(path), 1, "error"))
        return None
    header = [h.strip() for h in header]
    if not any(header):
        problems.append(Problem("the header row is empty; file ignored. The first line must name the columns.",
                                str(path), 1, "error"))
        return None
    return header


def _csv_reason(e: Exception) -> str:
    if isinstance(e, _Unreadable):
        return str(e)
    if "field larger than field limit" in str(e):
        return f"a field longer than {mb(csv.field_size_limit())} (quotes left open?)"
    return f"unreadable CSV ({e})"


# ---- Parquet ------------------------------------------------------------------------------------

def read_parquet(path: Path, problems: list[Problem], unit: str) -> Iterator[tuple[int, dict]]:
    try:
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
    except Exception as e:  # pyarrow raises several types for truncated/corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({e}). Was it copied completely? "
                        "Copy or export it again.") from e
    row = 0
    tally = Tally(path, problems, "a Parquet file of text columns")
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as e:
            raise DataError(f"{path}: the Parquet file breaks off after row {row} ({e}). "
                            "It is probably truncated; copy or export it again.") from e
        for item in _batch_rows(batch, row, tally):
            row += 1
            if item is not None:
                tally.rows += 1
                yield row, item


def _batch_rows(batch, first: int, tally: Tally) -> list[Optional[dict]]:
    """The batch's rows as dicts; a row whose values Python can't hold (a date past year 9999) is None."""
    try:
        return batch.to_pylist()
    except Exception:  # OverflowError, ValueError, ArrowNotImplementedError...: find the rows, keep the rest
        pass
    out: list[Optional[dict]] = []
    for i in range(batch.num_rows):
        try:
            out.append(batch.slice(i, 1).to_pylist()[0])
        except Exception as e:
            tally.skip(f"a value Python can't read ({type(e).__name__}: {e}); row skipped. "
                       "Convert that column to text and export again.", first + i + 1)
            out.append(None)
    return out


# ---- plain text ---------------------------------------------------------------------------------

def read_txt(path: Path, problems: list[Problem], unit: str) -> Iterator[tuple[int, dict]]:
    cap = MAX_LINE_BYTES
    with path.open("rb") as f:
        check_encoding(f, path)
        if unit == "file":
            yield from _txt_document(f, path, cap, problems)
        else:
            yield from _txt_paragraphs(_text_lines(f, path, cap), path, cap, problems)


def _decoded(f: BinaryIO, path: Path, cap: int) -> Iterator[tuple[int, str | LongLine]]:
    for number, raw in bounded_lines(f, cap):
        if isinstance(raw, LongLine):
            yield number, raw
            continue
        if number == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{number}: bytes that are not UTF-8 (column {e.start + 1}). "
                            "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).") from e


def _text_lines(f: BinaryIO, path: Path, cap: int) -> Iterator[tuple[int, str | LongLine]]:
    """Numbered lines as str.splitlines sees them (CR, form feed... end a line too)."""
    n = 0
    for _, text in _decoded(f, path, cap):
        for piece in [text] if isinstance(text, LongLine) else text.splitlines():
            n += 1
            yield n, piece


def _txt_document(f: BinaryIO, path: Path, cap: int, problems: list[Problem]) -> Iterator[tuple[int, dict]]:
    parts, size = [], 0
    for _, text in _decoded(f, path, cap):
        size += text.size if isinstance(text, LongLine) else len(text)
        if size > cap:
            problems.append(Problem(f"the file is over the {mb(cap)} one example may take; skipped. Use text unit "
                                    "'paragraph', or split it into smaller files.", str(path), 1))
            return
        parts.append(text)
    text = "".join(parts).strip("\n")
    if text.strip():
        yield 1, {"text": text}


def _txt_paragraphs(lines: Iterator[tuple[int, str | LongLine]], path: Path, cap: int,
                    problems: list[Problem]) -> Iterator[tuple[int, dict]]:
    """Blocks of lines between blank lines; a block over the cap is reported, not kept."""
    block: list[str] = []
    start = size = 0
    for n, line in _with_end(lines):
        if line is not None and (isinstance(line, LongLine) or line.strip()):
            start = start or n
            size += line.size if isinstance(line, LongLine) else len(line) + 1
            if size <= cap:
                block.append(line)  # type: ignore[arg-type]  (a LongLine makes size exceed the cap)
            continue
        if start and size > cap:
            problems.append(Problem(f"the paragraph is {mb(size)} long, over the {mb(cap)} a row may take; "
                                    "skipped. Split it with blank lines.", str(path), start))
        elif start:
            yield start, {"text": "\n".join(block)}
        block, start, size = [], 0, 0


def _with_end(lines: Iterator[tuple[int, str | LongLine]]) -> Iterator[tuple[int, str | LongLine | None]]:
    """The lines, then (0, None): one blank line more so the last block ends like the others."""
    yield from lines
    yield 0, None


READERS = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".tsv": read_csv,
           ".parquet": read_parquet, ".txt": read_txt}
