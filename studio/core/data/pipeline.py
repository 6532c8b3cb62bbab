"""The whole-dataset pipeline: read, convert, render and tokenize every row through `datasets`.

The result is an Arrow table, memory-mapped and cached under the studio home by a key made of
the files' identity (path, size, mtime), the detection, the rendering options and the
tokenizer's fingerprint (which covers the chat template, a custom one included): a second run
(or the worker after the data page) doesn't re-tokenize, and a changed template does.

Clean single files go through datasets' own fast readers (pyarrow); anything those reject
(malformed lines, mixed types, ragged CSV, folders, .txt) goes through the studio's tolerant
readers, which report every bad line instead of failing. Rows that can't be used stay in the
table with a ``problem`` message and their location, so nothing is silently lost.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from studio.core.data.errors import DataError, Problem
from studio.core.data.formats import Detection, convert_row, detect_format
from studio.core.data.loaders import Source, iter_records, open_arrow_folder, resolve_source
from studio.core.data.progress import Cancelled, Progress
from studio.core.data.render import segments, template_tokenizer, tokenize_segments, wants_bos

PIPELINE_VERSION = 2  # bump when the tokenized columns change meaning
BATCH = 1000
_FAST_BUILDERS = {".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


@dataclass
class Tokenized:
    """The tokenized table (a datasets.Dataset) plus what was learned reading it."""

    dataset: Any
    detection: Detection
    source: Source
    read_problems: list[Problem] = field(default_factory=list)
    from_cache: bool = False
    template: str = "chatml"  # the template actually used ("tokenizer" = the model's own, "custom" = the run's)
    rows_numbered: bool = False  # `line` holds row numbers (datasets' fast JSONL reader skips blank lines)


def cache_root() -> Path:
    from studio.core.paths import studio_home

    root = studio_home() / "cache" / "data"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _features():
    import datasets

    return datasets.Features({
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "labels": datasets.Sequence(datasets.Value("int32")),
        "n_tokens": datasets.Value("int32"),
        "n_loss": datasets.Value("int32"),
        "hash": datasets.Value("int64"),
        "file": datasets.Value("string"),
        "line": datasets.Value("int64"),
        "problem": datasets.Value("string"),
    })


def _canon_features():
    import datasets

    return datasets.Features({
        "conversation": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        "file": datasets.Value("string"),
        "line": datasets.Value("int64"),
        "problem": datasets.Value("string"),
    })


def head_detection(spec: Any, sample: int = 1000) -> tuple[Source, Detection, list[Problem]]:
    """Detect the format from the first rows only (fast, also for a 1 GB file)."""
    source = resolve_source(spec)
    problems: list[Problem] = []
    rows = []
    for _, _, row in iter_records(source, problems):
        rows.append(row)
        if len(rows) >= sample:
            break
    if not rows:
        detail = f" ({problems[0]})" if problems else ""
        raise DataError(f"{source.label}: no usable rows{detail}.")
    return source, detect_format(rows, spec.column_map, spec.format, source.label), problems


def tokenize_dataset(spec: Any, tokenizer: Any, progress: Optional[Progress] = None,
                     use_cache: bool = True) -> Tokenized:
    """Every row of ``spec``'s data tokenized, cached by content. Raises DataError or Cancelled."""
    progress = progress or Progress()
    # A custom template replaces the tokenizer's own on a copy, so it is part of tok.fingerprint: the cache key.
    template, tok = template_tokenizer(spec.effective_template, tokenizer)
    label = "custom" if spec.template == "custom" else template
    progress.update(0.0, "reading the first rows")
    source, detection, _ = head_detection(spec)
    opts = {"template": template, "train_on": spec.train_on, "add_eos": spec.add_eos}
    if _is_small(source):
        # A few MB tokenize in milliseconds: skip datasets (its import alone takes over a second).
        return Tokenized(_tokenize_in_memory(source, detection, opts, tok, progress), detection, source, [],
                         False, label)
    import datasets

    datasets.disable_progress_bars()
    key = _key(source.fingerprint(), detection, opts, tok.fingerprint)
    root = cache_root()
    cached = root / f"tokenized-{key}.arrow"
    meta_file = root / f"tokenized-{key}.json"
    if use_cache and cached.is_file() and meta_file.is_file():
        try:
            ds = datasets.Dataset.from_file(str(cached))
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            progress.update(1.0, "loaded from cache")
            return Tokenized(ds, detection, source, [Problem(**p) for p in meta.get("read_problems", [])],
                             True, label, bool(meta.get("rows_numbered")))
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            cached.unlink(missing_ok=True)
    _prune(root)
    raw, read_problems, canonical = _raw_dataset(source, detection, progress)
    single = source.files[0] if source.kind == "files" and len(source.files) == 1 else None
    offset = 2 if single is not None and single.suffix.lower() in (".csv", ".tsv") else 1
    processor = _Processor(detection, opts, tok, progress, len(raw), canonical, source.label, offset)
    try:
        ds = raw.map(processor, batched=True, batch_size=BATCH, remove_columns=raw.column_names,
                     features=_features(), cache_file_name=str(cached), load_from_cache_file=False,
                     new_fingerprint=key, desc=None)
    except Cancelled:
        _sweep_tmp(root)
        raise
    rows_numbered = not canonical and single is not None and single.suffix.lower() == ".jsonl"
    meta_file.write_text(json.dumps({"read_problems": [asdict(p) for p in read_problems],
                                     "detection": asdict(detection), "rows_numbered": rows_numbered}),
                         encoding="utf-8")
    progress.update(1.0, "tokenized")
    return Tokenized(ds, detection, source, read_problems, False, label, rows_numbered)


SMALL_BYTES = 8 * 1024 * 1024


class TableRows:
    """A small tokenized table held in memory, with the ``.data``/``len`` that stats and the worker read."""

    def __init__(self, table: Any):
        self.data = table

    def __len__(self) -> int:
        return self.data.num_rows


def _is_small(source: Source) -> bool:
    if source.kind != "files":
        return False
    try:
        return sum(f.stat().st_size for f in source.files) < SMALL_BYTES
    except OSError:
        return False


def _tokenize_in_memory(source: Source, detection: Detection, opts: dict, tok: Any, progress: Progress) -> TableRows:
    import pyarrow as pa

    rows = list(_canonical_rows(json.dumps(_source_dict(source)), json.dumps(asdict(detection)), ""))
    processor = _Processor(detection, opts, tok, progress, len(rows), True)
    columns: dict[str, list] = {}
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        out = processor({k: [r[k] for r in chunk] for k in ("conversation", "file", "line", "problem")})
        for k, v in out.items():
            columns.setdefault(k, []).extend(v)
    schema = pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32())),
                        ("n_tokens", pa.int32()), ("n_loss", pa.int32()), ("hash", pa.int64()),
                        ("file", pa.string()), ("line", pa.int64()), ("problem", pa.string())])
    if not columns:
        columns = {name: [] for name in schema.names}
    progress.update(1.0, "tokenized")
    return TableRows(pa.table(columns, schema=schema))


def _key(source_fp: str, detection: Detection, opts: dict, tok_fp: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([PIPELINE_VERSION, source_fp, detection.format, detection.column_map, opts, tok_fp],
                        sort_keys=True).encode())
    return h.hexdigest()[:20]


KEEP_ENTRIES = 8  # tokenized tables kept in the cache; older ones are deleted (each can be GBs)


def _prune(root: Path) -> None:
    entries = sorted(root.glob("tokenized-*.arrow"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP_ENTRIES - 1:]:
        for p in (old, old.with_suffix(".json")):
            try:
                p.unlink()
            except OSError:
                pass


def _sweep_tmp(root: Path) -> None:
    for p in root.glob("tmp*"):
        try:
            p.unlink() if p.is_file() else shutil.rmtree(p)
        except OSError:
            pass


def _raw_dataset(source: Source, detection: Detection, progress: Progress):
    """(dataset, problems found while reading, whether rows are already canonical conversations)."""
    cache_dir = str(cache_root() / "raw")
    if source.kind == "hub":
        from studio.core.data.hub import open_hub_dataset

        progress.update(0.0, "downloading from the hub")
        return open_hub_dataset(source, cache_dir=cache_dir), [], False
    if source.kind == "arrow":
        return open_arrow_folder(source), [], False
    if len(source.files) == 1 and source.files[0].suffix.lower() in _FAST_BUILDERS:
        ds = _fast_dataset(source.files[0], cache_dir, progress)
        if ds is not None:
            return ds, [], False
    progress.update(0.0, "reading (checking every row)")
    return _checked_dataset(source, detection, cache_dir), [], True


def _fast_dataset(path: Path, cache_dir: str, progress: Progress):
    """The file through datasets' own reader (pyarrow), or None where that reader can't be trusted with it."""
    import datasets

    from studio.core.data import readers
    from studio.core.data.lines import lines_within

    builder = _FAST_BUILDERS[path.suffix.lower()]
    if builder != "parquet" and not lines_within(path, readers.MAX_LINE_BYTES):
        return None  # it would parse the long line whole (gigabytes); the tolerant reader skips it and says so
    progress.update(0.0, f"reading {path.name}")
    try:
        kwargs = _csv_options(path) if builder == "csv" else {}
        ds = datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache_dir, **kwargs)
        # datasets keeps a column of mixed types as "Json"; the tolerant reader says where they differ.
        mixed = any(type(f).__name__ == "Json" for f in ds.features.values())
        if len(ds) == 0 or mixed:
            return None
        ds.data.validate(full=True)  # pyarrow's JSON reader lets bytes that aren't UTF-8 into text columns
        return ds
    except Cancelled:
        raise
    except Exception:
        return None  # the tolerant reader says exactly what is wrong and where


def _csv_options(path: Path) -> dict[str, Any]:
    """Every cell as text, empty stays empty: pandas would turn "" and "NA" into NaN and "007" into 7."""
    import datasets

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    return {"delimiter": delimiter, "na_filter": False,
            "features": datasets.Features({h: datasets.Value("string") for h in header})}


def _checked_dataset(source: Source, detection: Detection, cache_dir: str):
    """Every row through the studio's readers, as a datasets.Dataset of canonical conversations.

    datasets wraps an exception from the generator in DatasetGenerationError ("An error occurred while
    generating the dataset"); the readers' DataError inside it, which names file and line, is what the
    user gets.
    """
    import datasets

    try:
        return datasets.Dataset.from_generator(
            _canonical_rows, features=_canon_features(), cache_dir=cache_dir,
            gen_kwargs={"source_json": json.dumps(_source_dict(source)),
                        "detection_json": json.dumps(asdict(detection)), "fingerprint": source.fingerprint()})
    except Exception as e:
        cause = _data_error_in(e)
        if cause is None:
            raise
        raise cause from None


def _data_error_in(e: Optional[BaseException]) -> Optional[DataError]:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, DataError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _source_dict(source: Source) -> dict:
    d = asdict(source)
    d["files"] = [str(f) for f in source.files]
    return d


def _canonical_rows(source_json: str, detection_json: str, fingerprint: str):
    """Generator for datasets.from_generator: canonical conversations, or the reason a row can't be used.

    Problems of reading (not of one row's content) are prefixed with "!": they are not rows.
    """
    sd = json.loads(source_json)
    sd["files"] = [Path(f) for f in sd["files"]]
    source = Source(**sd)
    detection = Detection(**json.loads(detection_json))
    problems: list[Problem] = []
    for file, line, row in iter_records(source, problems):
        yield from _problem_rows(problems)
        try:
            conv = convert_row(row, detection)
            yield {"conversation": conv, "file": file, "line": line, "problem": ""}
        except ValueError as e:
            yield {"conversation": [], "file": file, "line": line, "problem": f"{e}; row skipped"}
    yield from _problem_rows(problems)


def _problem_rows(problems: list[Problem]):
    """The reading problems found so far as table entries; the list is emptied (a file may have millions)."""
    for p in problems:
        yield {"conversation": [], "file": p.file, "line": p.line or 0, "problem": "!" + p.message}
    problems.clear()


class _Processor:
    """The batched map function: rows -> conversations -> pieces -> token ids and labels."""

    def __init__(self, detection: Detection, opts: dict, tok: Any, progress: Progress, total: int, canonical: bool,
                 file: str = "", line_offset: int = 1):
        self.detection = detection
        self.template = opts["template"]
        self.train_on = opts["train_on"]
        self.eos = (tok.eos_token or "") if opts["add_eos"] else ""
        self.tok = tok
        self.add_bos = wants_bos(self.template, tok)
        self.progress = progress
        self.total = max(total, 1)
        self.canonical = canonical
        self.file = file
        self.line_offset = line_offset  # row 0 is on line 1 (JSONL) or 2 (CSV, after the header)
        self.done = 0

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        n = len(next(iter(batch.values()))) if batch else 0
        if self.canonical:
            convs = batch["conversation"]
            files, lines, problems = batch["file"], batch["line"], list(batch["problem"])
        else:
            keys = list(batch)
            convs, problems = [], []
            for values in zip(*(batch[k] for k in keys)):
                try:
                    convs.append(convert_row(dict(zip(keys, values)), self.detection))
                    problems.append("")
                except ValueError as e:
                    convs.append([])
                    problems.append(f"{e}; row skipped")
            first = self.done
            files = [self.file] * n
            lines = list(range(first + self.line_offset, first + n + self.line_offset))
        pieces_rows, hashes = [], []
        for i, conv in enumerate(convs):
            pieces: list = []
            if not problems[i]:
                try:
                    pieces = segments(conv, self.template, self.train_on, self.eos, self.tok)
                except DataError as e:
                    problems[i] = f"{e}; row skipped"
            pieces_rows.append(pieces)
            hashes.append(_hash(pieces) if pieces else 0)
        encoded = tokenize_segments(pieces_rows, self.tok, self.add_bos)
        ids_col, labels_col, n_tok, n_loss = [], [], [], []
        for (ids, labels), pieces in zip(encoded, pieces_rows):
            if not pieces:
                ids, labels = [], []
            ids_col.append(ids)
            labels_col.append(labels)
            n_tok.append(len(ids))
            n_loss.append(len(labels) - labels.count(-100))
        self.done += n
        self.progress.update(self.done / self.total, f"tokenized {self.done:,} of {self.total:,} rows")
        return {"input_ids": ids_col, "labels": labels_col, "n_tokens": n_tok, "n_loss": n_loss, "hash": hashes,
                "file": files, "line": lines, "problem": problems}


def _hash(pieces: list[tuple[str, bool]]) -> int:
    """Identity of an example as trained: the same text with the same mask is a duplicate."""
    h = hashlib.blake2b(digest_size=8)
    for text, loss in pieces:
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x01" if loss else b"\x00")
    return int.from_bytes(h.digest(), "little", signed=True)
