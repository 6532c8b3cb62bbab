"""Bad input never crashes: every case gives a message naming the file, the line or row, and the fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, make_tokenizer_dir, write_jsonl  # noqa: E402

from studio.core.config import DataSpec  # noqa: E402
from studio.core.data import DataError, load_dataset_rows, load_preview, load_tokenizer  # noqa: E402
from studio.core.data.hub import hub_error_message  # noqa: E402
from studio.core.data.stats import compute_stats  # noqa: E402


@pytest.fixture(autouse=True, params=["in-memory", "datasets"])
def path_kind(request, monkeypatch):
    """Run every case through both the in-memory path (small data) and the datasets path (large data)."""
    import studio.core.data.pipeline as pipeline

    if request.param == "datasets":
        monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)
    return request.param


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("tok")))


def spec_for(path, **kw) -> DataSpec:
    return DataSpec(source="file", path=str(path), **kw)


def test_malformed_json_line_is_skipped_and_counted(tmp_path, tok):
    f = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in alpaca_rows(5)]
    lines.insert(2, '{"instruction": "broken", "output": ')
    f.write_text("\n".join(lines) + "\n")
    res = load_dataset_rows(f)
    assert len(res.rows) == 5 and res.skipped == 1
    assert any(p.line == 3 and "malformed JSON" in p.message and "skipped" in p.message for p in res.problems)
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.rows == 6 and stats.usable == 5 and stats.skipped == 1
    assert str(stats.problems[0]).startswith(f"{f}:3: malformed JSON")


def test_non_utf8_bytes_name_the_line(tmp_path, tok):
    f = tmp_path / "d.jsonl"
    good = [json.dumps(r).encode() for r in alpaca_rows(3)]
    f.write_bytes(b"\n".join([good[0], b'{"instruction": "caf\xe9", "output": "x"}', good[1], good[2]]) + b"\n")
    res = load_dataset_rows(f)
    assert len(res.rows) == 3
    (p,) = res.problems
    assert p.line == 2 and "not UTF-8" in p.message and "iconv" in p.message
    csv_file = tmp_path / "d.csv"
    csv_file.write_bytes(b"instruction,output\nhello,world\ncaf\xe9,x\n")
    with pytest.raises(DataError, match=r"d\.csv:3: bytes that are not UTF-8.*UTF-8"):
        load_dataset_rows(csv_file)


def test_ragged_csv_rows_are_reported_with_line(tmp_path, tok):
    f = tmp_path / "d.csv"
    f.write_text("instruction,output\na,b\nc,d,e\n\"multi\nline\",ok\nf,g\n")
    res = load_dataset_rows(f)
    assert [r["instruction"] for r in res.rows] == ["a", "multi\nline", "f"]
    (p,) = res.problems
    assert p.line == 3 and "3 fields, the header has 2" in p.message
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 3 and stats.skipped == 1
    assert any(pr.line == 3 for pr in stats.problems)


def test_missing_and_empty_required_columns(tmp_path, tok):
    f = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c"},
                                           {"instruction": "d", "output": "   "}, {"instruction": "e", "output": "f"}])
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 2
    msgs = {p.line: p.message for p in stats.problems}
    assert "`output` is missing" in msgs[2] and "Map a column" in msgs[2]
    assert "`output` is empty" in msgs[3]
    g = write_jsonl(tmp_path / "e.jsonl", [{"q": "a", "zzz": "b"}])
    with pytest.raises(DataError, match="could not recognise.*columns are q, zzz.*Map your columns"):
        compute_stats(spec_for(g), tok, max_len=64)


def test_mixed_types_in_a_column_are_named(tmp_path, tok, monkeypatch):
    import studio.core.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)  # through datasets, which stores such a column as Json
    rows = alpaca_rows(6)
    rows[4]["output"] = 17
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 6  # the number is used as text, the row is kept
    (p,) = [p for p in stats.problems if "mixed" in p.message or "holds numbers" in p.message]
    assert p.line == 5 and "`output`" in p.message


def test_empty_file_and_whitespace_file(tmp_path, tok):
    for name, content in (("e.jsonl", b""), ("e.csv", b""), ("w.jsonl", b"\n\n  \n"), ("w.json", b"  ")):
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(DataError, match=f"{name}.*no usable rows"):
            load_preview(spec_for(f))
        with pytest.raises(DataError, match="no usable rows"):
            compute_stats(spec_for(f), tok, max_len=64)


def test_empty_and_non_alternating_conversations(tmp_path, tok):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    rows = [good, {"messages": []},
            {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                          {"role": "assistant", "content": "c"}]},
            {"messages": [{"role": "assistant", "content": "a"}]},
            {"messages": [{"role": "user", "content": "a"}]},
            {"messages": [{"role": "wizard", "content": "a"}]}]
    f = write_jsonl(tmp_path / "c.jsonl", rows)
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 1
    msgs = {p.line: p.message for p in stats.problems}
    assert "empty conversation" in msgs[2]
    assert "turns 1 and 2 are both from user" in msgs[3] and "alternate" in msgs[3]
    assert "must start with a user turn" in msgs[4]
    assert "no assistant turn" in msgs[5]
    assert "unknown role 'wizard'" in msgs[6]


def test_row_longer_than_any_max_length(tmp_path, tok):
    rows = alpaca_rows(3) + [{"instruction": "word " * 5000, "output": "short"},
                             {"instruction": "q", "output": "long " * 5000}]
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    stats = compute_stats(spec_for(f), tok, max_len=64)
    # The long prompt leaves no answer within 64 tokens: dropped. The long answer is cut, kept.
    assert stats.dropped == 1 and stats.truncated == 1 and stats.train_rows == 4
    assert stats.tokens_lost > 4000
    assert stats.loss_tokens <= stats.train_tokens  # counted after the cut


def test_hub_errors_are_plain_sentences(monkeypatch):
    class DatasetNotFoundError(Exception):
        pass

    class GatedRepoError(Exception):
        pass

    msg = hub_error_message("me/nope", DatasetNotFoundError("Dataset 'me/nope' doesn't exist on the Hub"))
    assert "no such dataset" in msg and "spelling" in msg
    msg = hub_error_message("org/gated", GatedRepoError("401 Client Error"))
    assert "needs a Hugging Face token" in msg and "HF_TOKEN" in msg
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    msg = hub_error_message("a/b", ConnectionError("Couldn't reach 'a/b' on the Hub (ConnectionError)"))
    assert "can't be reached" in msg


def test_hub_failure_reaches_the_user_without_losing_settings(monkeypatch, tok):
    import datasets

    class DatasetNotFoundError(Exception):
        pass

    def fail(*a, **k):
        raise DatasetNotFoundError("Dataset 'me/nope' doesn't exist on the Hub or cannot be accessed.")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    spec = DataSpec(source="hub", path="me/nope", column_map={"q": "instruction"}, format="alpaca")
    with pytest.raises(DataError, match="me/nope: no such dataset"):
        load_preview(spec)
    with pytest.raises(DataError, match="me/nope: no such dataset"):
        compute_stats(spec, tok, max_len=64)
    assert spec.column_map == {"q": "instruction"} and spec.format == "alpaca"


def test_zero_byte_and_truncated_parquet(tmp_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    empty = tmp_path / "e.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.parquet.*empty \(0 bytes\)"):
        load_preview(spec_for(empty))
    whole = tmp_path / "w.parquet"
    pq.write_table(pa.Table.from_pylist(alpaca_rows(200)), whole)
    cut = tmp_path / "t.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError, match=r"t\.parquet: not a readable Parquet file.*copied completely"):
        load_preview(spec_for(cut))
    with pytest.raises(DataError, match="not a readable Parquet"):
        compute_stats(spec_for(cut), tok, max_len=64)
    assert compute_stats(spec_for(whole), tok, max_len=64).usable == 200


def test_unsupported_and_missing_paths(tmp_path):
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type .docx"):
        load_preview(spec_for(tmp_path / "x.docx"))
    with pytest.raises(DataError, match="file not found"):
        load_preview(spec_for(tmp_path / "nope.jsonl"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="holds no dataset files"):
        load_preview(spec_for(empty_dir))


def test_json_that_is_not_an_array(tmp_path):
    f = tmp_path / "d.json"
    f.write_text('{"instruction": "a", "output": "b"}')
    with pytest.raises(DataError, match="expected a JSON array"):
        load_dataset_rows(f)
    f.write_text('[{"instruction": "a",\n "output": }]')
    with pytest.raises(DataError, match=r"d\.json:2: malformed JSON"):
        load_dataset_rows(f)


def test_broken_unicode_escape_is_a_row_problem(tmp_path, tok):
    f = tmp_path / "d.jsonl"
    f.write_text('{"instruction": "a\\ud800b", "output": "x"}\n{"instruction": "ok", "output": "y"}\n')
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 1
    assert stats.problems[0].line == 1 and "lone surrogate" in stats.problems[0].message


def test_csv_cells_stay_text(tmp_path, tok):
    f = tmp_path / "d.csv"
    f.write_text("instruction,output\nhello,\nq,007\nNA,x\n")
    stats = compute_stats(spec_for(f), tok, max_len=64)
    assert stats.usable == 2 and stats.problems[0].line == 2 and "`output` is empty" in stats.problems[0].message
    from studio.core.data import load_preview

    assert load_preview(spec_for(f)).rows[1]["output"] == "007"
