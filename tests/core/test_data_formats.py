"""Format detection with evidence, column mapping, every input shape, and fuzzing of the readers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, write_jsonl  # noqa: E402

from studio.core.config import DataSpec  # noqa: E402
from studio.core.data import DataError, convert_row, detect_format, load_dataset_rows, load_preview  # noqa: E402


def test_each_shape_is_detected_with_evidence():
    cases = {
        "alpaca": {"instruction": "a", "input": "", "output": "b"},
        "sharegpt": {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
        "messages": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
                                  {"role": "assistant", "content": "b"}]},
        "prompt_completion": {"prompt": "a", "completion": "b"},
        "text": {"text": "some document"},
    }
    for fmt, row in cases.items():
        d = detect_format([row] * 3)
        assert d.format == fmt
        assert d.evidence.startswith("3 of 3 rows have") and d.evidence.endswith(f": {fmt}")
        conv = convert_row(row, d)
        assert conv[-1]["role"] in ("assistant", "text")


def test_evidence_counts_the_rows_that_fit():
    rows = alpaca_rows(7) + [{"text": "x"}] * 3
    d = detect_format(rows)
    assert d.format == "alpaca" and d.evidence == "7 of 10 rows have instruction/output: alpaca"


def test_common_column_names_are_mapped_and_shown():
    d = detect_format([{"question": "q", "answer": "a"}] * 4)
    assert d.format == "alpaca" and d.column_map == {"question": "instruction", "answer": "output"}
    assert "mapped question -> instruction, answer -> output" in d.evidence
    conv = convert_row({"question": "q", "answer": "a"}, d)
    assert conv == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    # input/output without instruction: `input` is renamed, not duplicated into the prompt.
    d = detect_format([{"input": "q", "output": "a"}])
    assert convert_row({"input": "q", "output": "a"}, d)[0]["content"] == "q"


def test_user_mapping_and_forced_format_win():
    rows = [{"frage": "q", "antwort": "a", "text": "not this"}]
    d = detect_format(rows, {"frage": "prompt", "antwort": "completion"}, "prompt_completion")
    assert d.format == "prompt_completion" and d.evidence.startswith("set by hand")
    assert convert_row(rows[0], d)[1]["content"] == "a"
    d = detect_format(rows, {}, "alpaca")
    assert "0 of 1" in d.evidence and "map your columns" in d.evidence
    with pytest.raises(ValueError, match="`instruction` is missing"):
        convert_row(rows[0], d)


def test_sharegpt_roles_and_system_prompt():
    row = {"system": "be brief", "conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                                                    {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]}
    conv = convert_row(row, detect_format([row]))
    assert [t["role"] for t in conv] == ["system", "user", "assistant", "user", "assistant"]


def test_json_array_and_data_key_and_tsv_and_txt(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(alpaca_rows(3)))
    (tmp_path / "b.json").write_text(json.dumps({"data": alpaca_rows(2)}))
    (tmp_path / "c.tsv").write_text("prompt\tcompletion\nhi\tthere\n")
    (tmp_path / "d.txt").write_text("first para\nstill first\n\n\nsecond para\n")
    assert len(load_dataset_rows(tmp_path / "a.json").rows) == 3
    assert len(load_dataset_rows(tmp_path / "b.json").rows) == 2
    assert load_dataset_rows(tmp_path / "c.tsv").rows == [{"prompt": "hi", "completion": "there"}]
    res = load_dataset_rows(tmp_path / "d.txt")
    assert [r["text"] for r in res.rows] == ["first para\nstill first", "second para"]
    assert [loc[1] for loc in res.locations] == [1, 5]


def test_folder_of_txt_is_one_document_per_file(tmp_path):
    for i in range(3):
        (tmp_path / f"doc{i}.txt").write_text(f"doc {i}\n\nmore of doc {i}\n")
    (tmp_path / ".hidden.txt").write_text("ignored")
    p = load_preview(DataSpec(source="file", path=str(tmp_path)))
    assert p.detection.format == "text" and len(p.rows) == 3
    assert p.rows[0]["text"] == "doc 0\n\nmore of doc 0"


def test_save_to_disk_folder_and_split(tmp_path):
    import datasets

    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(alpaca_rows(4)),
                               "test": datasets.Dataset.from_list(alpaca_rows(2))})
    dd.save_to_disk(str(tmp_path / "saved"))
    p = load_preview(DataSpec(source="file", path=str(tmp_path / "saved")))
    assert len(p.rows) == 4 and p.detection.format == "alpaca"
    p = load_preview(DataSpec(source="file", path=str(tmp_path / "saved"), split="test"))
    assert len(p.rows) == 2
    with pytest.raises(DataError, match="no split 'dev'; it has train, test"):
        load_preview(DataSpec(source="file", path=str(tmp_path / "saved"), split="dev"))


def test_preview_reads_only_the_head(tmp_path):
    f = write_jsonl(tmp_path / "big.jsonl", alpaca_rows(5000))
    p = load_preview(DataSpec(source="file", path=str(f)), n=20)
    assert len(p.rows) == 20 and not p.complete and p.columns == ["instruction", "input", "output"]


# ---- fuzzing ---------------------------------------------------------------------------------
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=10)
_keys = st.sampled_from(["instruction", "input", "output", "prompt", "completion", "text", "messages",
                         "conversations", "role", "content", "from", "value", "system", "question", "answer", "x"])
_records = st.dictionaries(_keys, _values, max_size=6)


@settings(max_examples=120, deadline=None)
@given(st.lists(_records, min_size=1, max_size=8), st.sampled_from(["auto", "alpaca", "sharegpt", "messages",
                                                                     "prompt_completion", "text"]))
def test_detector_and_converter_never_crash(rows, forced):
    try:
        d = detect_format(rows, {}, forced)
    except DataError as e:
        assert "Map your columns" in str(e)
        return
    for row in rows:
        try:
            conv = convert_row(row, d)
        except ValueError as e:
            assert str(e)
            continue
        assert all(isinstance(t["content"], str) and t["role"] in ("system", "user", "assistant", "text")
                   for t in conv)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_records.map(json.dumps), st.text(max_size=30), st.binary(max_size=30).map(repr)),
                min_size=1, max_size=8))
def test_jsonl_reader_never_crashes(tmp_path, lines):
    f = tmp_path / "fuzz.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        p = load_preview(DataSpec(source="file", path=str(f)))
    except DataError as e:
        assert "fuzz.jsonl" in str(e)
        return
    assert len(p.rows) == len(p.locations)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200), st.sampled_from([".csv", ".tsv", ".json", ".txt", ".jsonl", ".parquet"]))
def test_any_bytes_in_any_file_type_give_rows_or_a_data_error(tmp_path, blob, suffix):
    f = tmp_path / f"fuzz{suffix}"
    f.write_bytes(blob)
    try:
        load_preview(DataSpec(source="file", path=str(f)))
    except DataError as e:
        assert f"fuzz{suffix}" in str(e)
