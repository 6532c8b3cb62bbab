"""Read dataset files into plain row dicts, reporting bad lines instead of crashing on them.

Readers are generators that stream the file, so the preview reads only the head of a 1 GB JSONL.
Every row keeps its location (file, line) so a problem found later can still point at it.
Folders, ``datasets.save_to_disk`` folders and hub ids are resolved by ``resolve_source``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from studio.core.data.errors import DataError, Problem
from studio.core.data.readers import READERS

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
_ARROW_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass
class Source:
    """Where rows come from: ``files`` (one or many), an ``arrow`` save_to_disk folder, or ``hub``."""

    kind: str
    label: str
    files: list[Path] = field(default_factory=list)
    path: str = ""  # the folder (arrow) or hub id
    subset: Optional[str] = None
    split: str = "train"
    text_unit: str = "auto"  # .txt: "file" | "paragraph" | "auto"

    def fingerprint(self) -> str:
        """Identity of the data as it is now: changes when any file changes."""
        if self.kind == "hub":
            return f"hub:{self.path}:{self.subset}:{self.split}"
        paths = self.files if self.kind == "files" else sorted(Path(self.path).rglob("*"))
        parts = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        return f"{self.kind}:{self.text_unit}:{self.split}:" + "|".join(parts)

    def unit_for(self, path: Path) -> str:
        if self.text_unit != "auto":
            return self.text_unit
        # A folder of .txt files is usually one document per file; a single file, blank-line blocks.
        return "file" if len(self.files) > 1 else "paragraph"


@dataclass
class LoadResult:
    rows: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    source: str = ""
    skipped: int = 0  # rows that could not be read
    locations: list[tuple[str, int]] = field(default_factory=list)  # (file, line) per row
    complete: bool = True  # False when ``limit`` stopped reading early


def resolve_source(spec_or_path: Any) -> Source:
    """Turn a DataSpec (or a path) into a Source; DataError when it can't be used."""
    if isinstance(spec_or_path, (str, Path)):
        path, kind, subset, split, unit = str(spec_or_path), "file", None, "train", "auto"
    else:
        kind = getattr(spec_or_path, "source", "file")
        if kind == "demo":
            from studio.core.paths import demo_dataset_path

            path = str(demo_dataset_path())
            kind = "file"
        else:
            path = spec_or_path.path
        subset = getattr(spec_or_path, "subset", None)
        split = getattr(spec_or_path, "split", "train") or "train"
        unit = getattr(spec_or_path, "text_unit", "auto")
    if kind == "hub":
        return Source("hub", path.strip(), path=path.strip(), subset=subset, split=split)
    p = Path(path).expanduser()
    if not str(path).strip():
        raise DataError("no dataset chosen: pick a file or folder.")
    if not p.exists():
        raise DataError(f"{p}: file not found. Check the path, or pick the file again.")
    if p.is_dir():
        if any((p / m).is_file() for m in _ARROW_MARKERS):
            return Source("arrow", str(p), path=str(p), split=split)
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not files:
            raise DataError(f"{p}: the folder holds no dataset files; it needs .jsonl, .json, .csv, .tsv, "
                            ".parquet or .txt files (or a folder written by datasets.save_to_disk).")
        return Source("files", str(p), files=files, path=str(p), split=split, text_unit=unit)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(f"{p}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}.")
    return Source("files", str(p), files=[p], path=str(p), split=split, text_unit=unit)


def load_dataset_rows(spec_or_path: Any, limit: Optional[int] = None) -> LoadResult:
    """Rows from a DataSpec (or a plain path). ``limit`` reads only the first N rows."""
    source = resolve_source(spec_or_path)
    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    locations: list[tuple[str, int]] = []
    complete = True
    for file, line, row in iter_records(source, problems):
        if limit is not None and len(rows) >= limit:
            complete = False
            break
        rows.append(row)
        locations.append((file, line))
    skipped = sum(1 for p in problems if "skipped" in p.message)
    if not rows:
        detail = f" ({problems[0]})" if problems else ""
        raise DataError(f"{source.label}: no usable rows{detail}.")
    return LoadResult(rows, problems, source.label, skipped, locations, complete)


def iter_records(source: Source, problems: list[Problem]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, line, row) for every readable row; unreadable ones become Problems."""
    if source.kind == "hub":
        from studio.core.data.hub import iter_hub_rows

        for i, row in enumerate(iter_hub_rows(source), start=1):
            yield source.path, i, row
        return
    if source.kind == "arrow":
        yield from _arrow_records(source)
        return
    types = ColumnTypes()
    for path in source.files:
        for line, row in _file_records(path, source, problems):
            types.observe(row, str(path), line)
            yield str(path), line, row
    problems.extend(types.problems())


def _file_records(path: Path, source: Source, problems: list[Problem]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        if path.stat().st_size == 0:
            problems.append(Problem("the file is empty (0 bytes); ignored. Pick a file that holds data.", str(path),
                                    severity="error" if len(source.files) == 1 else "warning"))
            return
        yield from READERS[path.suffix.lower()](path, problems, source.unit_for(path))
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e}). Check that it exists and you may "
                        "read it.") from e


def _arrow_records(source: Source) -> Iterator[tuple[str, int, dict[str, Any]]]:
    ds = open_arrow_folder(source)
    i = 0
    try:
        for i, row in enumerate(ds, start=1):
            yield source.path, i, row
    except (OSError, ValueError) as e:  # a damaged .arrow file fails while rows are read, not when opened
        raise DataError(f"{source.path}: row {i + 1} of the datasets folder can't be read ({e}). "
                        "Was it copied completely?") from e


def open_arrow_folder(source: Source):
    """The split of a ``save_to_disk`` folder as a datasets.Dataset."""
    import datasets

    try:
        ds = datasets.load_from_disk(source.path)
    except Exception as e:
        raise DataError(f"{source.path}: not a readable datasets folder ({e}). Was it copied completely?") from e
    if isinstance(ds, datasets.DatasetDict):
        if source.split not in ds:
            raise DataError(f"{source.path}: no split '{source.split}'; it has {', '.join(ds)}. Choose one of those.")
        ds = ds[source.split]
    return ds


class ColumnTypes:
    """Notices a column holding numbers in some rows and text in others (reported once per column)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, tuple[str, int, int]]] = {}

    def observe(self, row: dict[str, Any], file: str, line: int) -> None:
        for key, value in row.items():
            if value is None:
                continue
            kind = _kind(value)
            by_kind = self._seen.setdefault(key, {})
            if kind in by_kind:
                f, ln, n = by_kind[kind]
                by_kind[kind] = (f, ln, n + 1)
            else:
                by_kind[kind] = (file, line, 1)

    def problems(self) -> list[Problem]:
        out = []
        for key, by_kind in self._seen.items():
            if len(by_kind) < 2:
                continue
            main = max(by_kind, key=lambda k: by_kind[k][2])
            for kind, (file, line, n) in by_kind.items():
                if kind == main:
                    continue
                used = "those values are used as text" if kind in ("numbers", "true/false") \
                    else "those rows can't be used where the column should be text"
                out.append(Problem(
                    f"column `{key}` holds {kind} in {n:,} row(s) (first here) but {main} elsewhere; "
                    f"{used}. If that's wrong, fix the column so every row has {main}.",
                    file, line))
        return out


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN or infinite numbers"
    if isinstance(value, (int, float)):
        return "numbers"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary data"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "lists"
    if isinstance(value, dict):
        return "objects"
    return type(value).__name__
