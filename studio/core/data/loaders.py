"""Read dataset files into plain row dicts, reporting bad lines instead of crashing on them."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from studio.core.data.errors import DataError, Problem

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


@dataclass
class LoadResult:
    rows: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    source: str = ""
    skipped: int = 0  # rows that could not be read


def load_dataset_rows(spec_or_path: Any, limit: Optional[int] = None) -> LoadResult:
    """Rows from a DataSpec (or a plain path). ``limit`` reads only the first N rows."""
    path = _resolve_path(spec_or_path)
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path, or pick the file again.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; pick a .jsonl, .json, .csv, .tsv or .parquet file.")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes).")
    reader = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv, ".tsv": _read_csv,
              ".parquet": _read_parquet}[suffix]
    result = reader(path, limit)
    result.source = str(path)
    if not result.rows:
        detail = f" ({result.problems[0]})" if result.problems else ""
        raise DataError(f"{path}: no usable rows{detail}.")
    return result


def _resolve_path(spec_or_path: Any) -> Path:
    if isinstance(spec_or_path, (str, Path)):
        return Path(spec_or_path).expanduser()
    if getattr(spec_or_path, "source", None) == "demo":
        from studio.core.paths import demo_dataset_path

        return demo_dataset_path()
    return Path(spec_or_path.path).expanduser()


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: bytes that are not UTF-8 (at byte {e.start}). "
            "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
        ) from e


def _read_jsonl(path: Path, limit: Optional[int]) -> LoadResult:
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    skipped = 0
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            skipped += 1
            problems.append(Problem(f"malformed JSON ({e.msg} at column {e.colno}); row skipped", str(path), lineno))
            continue
        if not isinstance(obj, dict):
            skipped += 1
            problems.append(Problem(f"expected a JSON object, got {type(obj).__name__}; row skipped", str(path), lineno))
            continue
        rows.append(obj)
    return LoadResult(rows, problems, skipped=skipped)


def _read_json(path: Path, limit: Optional[int]) -> LoadResult:
    text = _read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno}). "
                        "Fix that line, or save the data as JSON Lines (one object per line).") from e
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list):
        raise DataError(f"{path}: expected a JSON array of objects (or {{\"data\": [...]}}).")
    rows, problems = [], []
    for i, item in enumerate(obj, start=1):
        if limit is not None and len(rows) >= limit:
            break
        if isinstance(item, dict):
            rows.append(item)
        else:
            problems.append(Problem(f"item is {type(item).__name__}, not an object; skipped", str(path), i))
    return LoadResult(rows, problems, skipped=len(problems))


def _read_csv(path: Path, limit: Optional[int]) -> LoadResult:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    text = _read_text(path)
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: the file has no header row.") from None
    rows, problems = [], []
    for lineno, values in enumerate(reader, start=2):
        if limit is not None and len(rows) >= limit:
            break
        if not values:
            continue
        if len(values) != len(header):
            problems.append(Problem(f"has {len(values)} fields, the header has {len(header)}; row skipped",
                                    str(path), lineno))
            continue
        rows.append(dict(zip(header, values)))
    return LoadResult(rows, problems, skipped=len(problems))


def _read_parquet(path: Path, limit: Optional[int]) -> LoadResult:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for truncated/corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({e}). Was it copied completely?") from e
    if limit is not None:
        table = table.slice(0, limit)
    return LoadResult(table.to_pylist())
