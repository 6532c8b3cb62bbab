"""Hostile files (issue #12, items 3 and 4): no traceback, bounded memory, every message placed, no garbage trained.

Each case runs through the in-memory path (small data) and the datasets path (data over 8 MB).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, make_tokenizer_dir, write_jsonl  # noqa: E402

from studio.core.config import DataSpec, RunConfig  # noqa: E402
from studio.core.data import DataError, load_dataset_rows, load_preview, load_tokenizer  # noqa: E402
from studio.core.data.stats import compute_stats  # noqa: E402


@pytest.fixture(autouse=True, params=["in-memory", "datasets"])
def path_kind(request, monkeypatch):
    import studio.core.data.pipeline as pipeline

    if request.param == "datasets":
        monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)
    return request.param


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("tok")))


def spec_for(path, **kw) -> DataSpec:
    return DataSpec(source="file", path=str(path), **kw)


def lines_of(rows) -> list[bytes]:
    return [json.dumps(r).encode() for r in rows]


def problem_at(stats, line: int) -> str:
    found = [p for p in stats.problems if p.line == line]
    assert found, f"no problem at line {line}: {[str(p) for p in stats.problems]}"
    return str(found[0])


# ---- CSV: bare CR, long fields ---------------------------------------------------------------------

def test_csv_with_cr_line_ends_reads_like_any_other(tmp_path, tok):
    f = tmp_path / "mac.csv"
    f.write_bytes(b"instruction,output\rwhat is one,1\rwhat is two,2\r")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 2 and stats.problem_count == 0


def test_bare_cr_in_the_header_is_a_message_with_the_line(tmp_path, tok):
    f = tmp_path / "cr.csv"
    f.write_bytes(b"instruc\rtion,output\nq,a\n")
    with pytest.raises(DataError, match=r"cr\.csv: no usable rows .*cr\.csv:2: has 2 fields, the header has 1"):
        compute_stats(spec_for(f), tok, max_len=64)


def test_csv_fields_over_131072_characters_are_data(tmp_path, tok):
    f = tmp_path / "long.csv"
    long_name = "n" * 140_000
    f.write_text(f"instruction,output,{long_name}\nq,a,x\nr,{'b' * 140_000},y\ns,c,z\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 3 and stats.problem_count == 0


def test_csv_line_over_the_cap_loses_only_its_row(tmp_path, tok, monkeypatch):
    import studio.core.data.readers as readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 50_000)
    f = tmp_path / "cap.csv"
    f.write_text(f"instruction,output\nq,a\nr,{'b' * 60_000}\ns,c\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 2
    assert "cap.csv:3: the line is 59 kB long, over the 49 kB a row may take; row skipped" in problem_at(stats, 3)
    header = tmp_path / "head.csv"
    header.write_text("x" * 60_000 + ",output\nq,a\n")
    with pytest.raises(DataError, match=r"head\.csv:1: the header row can't be read: the line is 59 kB long"):
        compute_stats(spec_for(header), tok, max_len=64)


# ---- JSON: nesting, long numbers -----------------------------------------------------------------

def test_deeply_nested_json_line_is_skipped_with_its_line(tmp_path, tok):
    f = tmp_path / "deep.jsonl"
    lines = lines_of(alpaca_rows(4))
    lines.insert(2, b'{"instruction": "x", "output": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 4
    assert "deep.jsonl:3: nested deeper than Python can read" in problem_at(stats, 3)
    doc = tmp_path / "deep.json"
    doc.write_text('[\n{"instruction": "a", "output": "b"},\n{"instruction": ' + "[" * 5000 + "]" * 5000 + "}\n]")
    with pytest.raises(DataError, match=r"deep\.json:3: nested deeper than Python can read.*JSON Lines"):
        compute_stats(spec_for(doc), tok, max_len=64)


def test_integer_of_5000_digits_is_skipped_with_its_line(tmp_path, tok):
    f = tmp_path / "int.jsonl"
    lines = lines_of(alpaca_rows(4))
    lines.insert(1, b'{"instruction": "x", "output": ' + b"7" * 5000 + b"}")
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 4
    assert "int.jsonl:2: a number with more than 4,300 digits" in problem_at(stats, 2)
    doc = tmp_path / "int.json"
    doc.write_text('[{"instruction": "a", "output": "b"},\n{"instruction": "1234567", "output": ' + "7" * 5000 + "}]")
    with pytest.raises(DataError, match=r"int\.json:2: a number with more than 4,300 digits"):
        compute_stats(spec_for(doc), tok, max_len=64)


# ---- long lines: reported, never loaded ----------------------------------------------------------

class SpyFile(io.BytesIO):
    """Remembers the longest piece the reader took at once."""

    longest = 0

    def readline(self, size=-1):
        piece = super().readline(size)
        SpyFile.longest = max(SpyFile.longest, len(piece))
        return piece


def test_a_line_over_the_cap_is_never_held_whole():
    from studio.core.data.lines import LongLine, bounded_lines

    data = b'{"a": 1}\n' + b"x" * (5 << 20) + b"\n" + b'{"b": 2}\n' + b"y" * (3 << 20)
    got = list(bounded_lines(SpyFile(data), cap=1 << 16))
    assert [n for n, _ in got] == [1, 2, 3, 4]
    assert got[0][1] == b'{"a": 1}\n' and got[2][1] == b'{"b": 2}\n'
    assert got[1][1] == LongLine((5 << 20) + 1) and got[3][1] == LongLine(3 << 20)
    assert SpyFile.longest <= 1 << 20  # the 5 MB line was read in 1 MB pieces and dropped


def test_jsonl_and_txt_lines_over_the_cap_are_reported(tmp_path, tok, monkeypatch):
    import studio.core.data.readers as readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 50_000)
    f = tmp_path / "long.jsonl"
    lines = lines_of(alpaca_rows(3))
    lines.insert(1, json.dumps({"instruction": "x", "output": "y" * 80_000}).encode())
    f.write_bytes(b"\n".join(lines) + b"\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 3
    assert "long.jsonl:2: the line is 78 kB long, over the 49 kB a row may take; row skipped" in problem_at(stats, 2)
    t = tmp_path / "long.txt"
    t.write_text("first paragraph\n\n" + "z" * 80_000 + "\n\nlast paragraph\n")
    stats = compute_stats(spec_for(t, format="text"), tok, max_len=64)
    assert stats.usable == 2 and "long.txt:3: the paragraph is 78 kB long" in problem_at(stats, 3)


def test_only_bounded_lines_reach_datasets_own_reader(tmp_path):
    from studio.core.data.lines import lines_within

    f = tmp_path / "d.jsonl"
    f.write_bytes(b"a" * 100 + b"\n" + b"b" * 1000 + b"\n" + b"c" * 10)
    assert lines_within(f, 1000) and not lines_within(f, 999)
    f.write_bytes(b"a\n" * 5000 + b"b" * 3000)
    assert lines_within(f, 3000) and not lines_within(f, 2999)


def test_a_file_of_bad_lines_is_given_up_not_listed_line_by_line(tmp_path, tok, monkeypatch):
    import studio.core.data.readers as readers

    monkeypatch.setattr(readers, "HOPELESS_AFTER", 100)
    f = tmp_path / "table.jsonl"  # a CSV saved as .jsonl: a message per line would be millions of them
    f.write_bytes(b'{"instruction": "q", "output": "a"}\n' + b"word,other\n" * 5000)
    with pytest.raises(DataError, match=r"table\.jsonl: 100 rows can't be used and 1 can, so the rest of the file "
                                        r"was not read\. Is it really JSON Lines.*table\.jsonl:2: malformed JSON"):
        compute_stats(spec_for(f), tok, max_len=64)
    c = tmp_path / "ragged.csv"
    c.write_text("instruction,output\n" + "q,a\n" + "x\n" * 5000)
    with pytest.raises(DataError, match=r"ragged\.csv: 100 rows can't be used.*Is it really CSV"):
        load_dataset_rows(c)
    some = tmp_path / "some.jsonl"  # a few bad lines among good ones are listed, however many
    some.write_bytes((b'{"instruction": "q", "output": "a"}\n' + b"[]\n" * 5) * 100)
    stats = compute_stats(spec_for(some), tok, max_len=64)
    assert stats.rows == 600 and stats.skipped == 500


# ---- messages name the file ----------------------------------------------------------------------

def test_an_unrecognised_shape_names_the_file(tmp_path, tok):
    from studio.core.preflight import _check_data

    f = write_jsonl(tmp_path / "shape.jsonl", [{"foo": "a", "bar": "b"}] * 3)
    with pytest.raises(DataError, match=r"shape\.jsonl: could not recognise the rows' shape"):
        compute_stats(spec_for(f), tok, max_len=64)
    assert load_preview(spec_for(f)).detection_error.startswith(f"{f}: could not recognise")
    problems: list[str] = []
    _check_data(SimpleNamespace(data=spec_for(f)), problems)
    assert problems and problems[0].startswith(f"{f}: could not recognise")


def test_utf16_file_says_so(tmp_path, tok):
    f = tmp_path / "wide.jsonl"
    f.write_bytes("".join(json.dumps(r) + "\n" for r in alpaca_rows(3)).encode("utf-16"))
    with pytest.raises(DataError, match=r"wide\.jsonl: the file is UTF-16 encoded.*iconv"):
        load_dataset_rows(f)


# ---- nothing that isn't text is trained as text --------------------------------------------------

def test_parquet_binary_and_nan_are_refused_with_their_rows(tmp_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "odd.parquet"
    pq.write_table(pa.table({
        "instruction": ["a", "b", "c", "d"],
        "output": pa.array([b"\xff\x00q", b"ok", b"x", b"y"], pa.binary()),
    }), f)
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 0 and stats.problem_count == 4
    assert "odd.parquet:1: `output` holds binary data (3 bytes), not text" in problem_at(stats, 1)
    g = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b", "c"], "completion": [1.5, float("nan"), float("inf")]}), g)
    stats = compute_stats(spec_for(g), tok, max_len=64)
    assert stats.usable == 1
    assert "nan.parquet:2: `completion` is NaN (a missing value?), not text" in problem_at(stats, 2)
    assert "nan.parquet:3: `completion` is an infinite number, not text" in problem_at(stats, 3)


def test_json_nan_literals_are_refused(tmp_path, tok):
    f = tmp_path / "nan.jsonl"
    f.write_text('{"instruction": "a", "output": NaN}\n{"instruction": "b", "output": "fine"}\n'
                 '{"instruction": Infinity, "output": "c"}\n')
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 1
    assert "`output` is NaN" in problem_at(stats, 1) and "`instruction` is an infinite number" in problem_at(stats, 3)


def test_parquet_dates_python_cannot_hold_are_row_problems(tmp_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "date.parquet"
    stamps = pa.array([0, 2**62, 0], pa.int64()).cast(pa.timestamp("us"))
    pq.write_table(pa.table({"text": ["one", "two", "three"], "when": stamps}), f)
    res = load_dataset_rows(f)
    assert [r["text"] for r in res.rows] == ["one", "three"]
    assert res.problems[0].line == 2 and "can't read" in res.problems[0].message


# ---- bad rows past preflight's 2,000 reach the worker with their line --------------------------------

def test_a_bad_row_after_row_5000_reaches_the_worker_with_its_line(tmp_path, tok):
    from studio.core.preflight import _check_data
    from studio.worker.data import prepare_data
    from studio.worker.errors import classify

    f = tmp_path / "late.jsonl"
    lines = lines_of(alpaca_rows(5000))
    lines.append(b'{"instruction": "x", "output": ' + b"[" * 3000 + b"]" * 3000 + b"}")
    f.write_bytes(b"\n".join(lines) + b"\n")
    found: list[str] = []
    _check_data(SimpleNamespace(data=spec_for(f)), found)
    assert found == []  # preflight reads 2,000 rows: the worker is where this one is met
    data = prepare_data(RunConfig().replace("data", {"source": "file", "path": str(f)}), tok, lambda _: None)
    assert data.info["skipped"] == 1
    assert any(p.startswith(f"{f}:5001: nested deeper") for p in data.info["problems"])
    c = tmp_path / "late.csv"
    c.write_bytes(b"instruction,output\n" + b"q,a\n" * 5000 + b"caf\xe9,x\n")
    with pytest.raises(DataError) as err:
        prepare_data(RunConfig().replace("data", {"source": "file", "path": str(c)}), tok, lambda _: None)
    kind, message = classify(err.value)
    assert kind == "data" and message.startswith(f"{c}:5002: bytes that are not UTF-8")


@pytest.mark.parametrize("head,what", [(b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\x1f\x8b\x08\x00", "gzip"),
                                       (b"PK\x03\x04", "ZIP archive"), (b"%PDF-1.7", "PDF")])
def test_a_file_that_is_not_text_says_what_it_is_not_how_to_reencode_it(tmp_path, head, what):
    import os

    from studio.core.data import load_dataset_rows

    path = tmp_path / "rows.jsonl"
    path.write_bytes(head + os.urandom(2000))
    with pytest.raises(DataError) as info:
        load_dataset_rows(path)
    assert what in str(info.value) and "rows.jsonl" in str(info.value) and "iconv" not in str(info.value)
