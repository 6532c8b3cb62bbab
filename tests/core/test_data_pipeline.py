"""The whole-dataset pipeline: cache, duplicates, split, truncation, packing, progress and cancel."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, make_tokenizer_dir, write_jsonl  # noqa: E402

from studio.core.config import DataSpec, RunConfig  # noqa: E402
from studio.core.data import Cancelled, IGNORE_INDEX, Progress, load_tokenizer  # noqa: E402
from studio.core.data.stats import compute_stats, pack_lengths  # noqa: E402


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return load_tokenizer(make_tokenizer_dir(tmp_path_factory.mktemp("tok")))


@pytest.fixture
def big(monkeypatch):
    """Force the datasets (Arrow, cached) path that large files take."""
    import studio.core.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)
    return pipeline


def spec_for(path, **kw) -> DataSpec:
    return DataSpec(source="file", path=str(path), **kw)


def test_second_run_comes_from_the_cache(tmp_path, tok, big, monkeypatch):
    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(300))
    first = compute_stats(spec_for(f), tok, max_len=64)
    assert not first.from_cache

    def boom(*a, **k):
        raise AssertionError("re-tokenized")

    monkeypatch.setattr(big._Processor, "__call__", boom)
    second = compute_stats(spec_for(f), tok, max_len=32, batch_size=2)
    assert second.from_cache and second.usable == 300
    cache = list((Path(__import__("os").environ["STUDIO_HOME"]) / "cache" / "data").glob("tokenized-*.arrow"))
    assert cache
    # Changing the file or the rendering invalidates the entry.
    write_jsonl(f, alpaca_rows(301))
    with pytest.raises(AssertionError, match="re-tokenized"):
        compute_stats(spec_for(f), tok, max_len=64)


def test_duplicates_split_and_steps(tmp_path, tok, big):
    rows = alpaca_rows(100) + alpaca_rows(10)  # 10 exact duplicates
    f = write_jsonl(tmp_path / "d.jsonl", rows)
    s = compute_stats(spec_for(f, validation_split=0.2, shuffle_seed=3), tok, max_len=64, batch_size=4, grad_accum=2)
    assert s.duplicates == 10 and s.usable == 110
    assert (s.train_rows, s.val_rows) == (80, 20)
    assert s.steps_per_epoch == 10  # 80 rows / (4 x 2)
    assert s.lengths.shape == (80,) and s.train_tokens == int(np.minimum(s.lengths, 64).sum())
    keep = compute_stats(spec_for(f, dedup=False), tok, max_len=64)
    assert keep.duplicates == 0 and keep.train_rows == 110
    # The same seed gives the same split.
    again = compute_stats(spec_for(f, validation_split=0.2, shuffle_seed=3), tok, max_len=64)
    assert np.array_equal(again.plan.val, s.plan.val)


def test_separate_validation_file(tmp_path, tok):
    f = write_jsonl(tmp_path / "train.jsonl", alpaca_rows(50))
    v = write_jsonl(tmp_path / "val.jsonl", alpaca_rows(7))
    s = compute_stats(spec_for(f, validation_path=str(v), validation_split=0.3), tok, max_len=64)
    assert (s.train_rows, s.val_rows) == (50, 7)


def test_packing_efficiency(tok, tmp_path):
    lengths = np.array([60, 50, 40, 30, 20, 10, 5, 64, 64, 1])
    bins = pack_lengths(lengths, 64)
    assert sorted(i for b in bins for i in b) == list(range(10))
    assert all(lengths[b].sum() <= 64 for b in bins)
    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(200))
    s = compute_stats(spec_for(f, packing=True), tok, max_len=256)
    assert s.sequences < s.train_rows / 5 and 0.8 < s.packing_efficiency <= 1.0


def test_text_rows_and_folder_go_through_datasets(tmp_path, tok, big):
    for i in range(4):
        (tmp_path / f"doc{i}.txt").write_text(f"hello world {i}\n")
    s = compute_stats(spec_for(tmp_path), tok, max_len=64)
    assert s.detection.format == "text" and s.train_rows == 4 and s.loss_tokens == s.train_tokens


def test_progress_reports_and_cancel_stops(tmp_path, tok, big):
    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(3000))
    seen = []
    compute_stats(spec_for(f), tok, max_len=64, progress=Progress(lambda fr, msg: seen.append((fr, msg)), 0))
    assert seen[-1][0] == 1.0 and any("tokenized" in m for _, m in seen)

    g = write_jsonl(tmp_path / "e.jsonl", alpaca_rows(3001))
    progress = Progress(lambda fr, msg: progress.cancel() if fr > 0.3 else None, 0)
    with pytest.raises(Cancelled):
        compute_stats(spec_for(g), tok, max_len=64, progress=progress)
    # A cancelled run leaves no half-written cache behind: the next run tokenizes fully.
    s = compute_stats(spec_for(g), tok, max_len=64)
    assert s.usable == 3001 and not s.from_cache


def test_prepare_data_uses_the_pipeline(tmp_path, tok):
    from studio.worker.data import prepare_data

    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(120) + alpaca_rows(5) + [{"instruction": "x"}])
    cfg = RunConfig().replace("data", {"source": "file", "path": str(f), "validation_split": 0.1})
    logs: list[str] = []
    data = prepare_data(cfg, tok, logs.append)
    assert len(data.train) + len(data.val) == 120 and len(data.val) == 12
    assert data.info["duplicates"] == 5 and data.info["skipped"] == 1
    assert data.info["problems"] and ":126:" in data.info["problems"][0]
    ex = data.train[0]
    assert len(ex.input_ids) == len(ex.labels) and 0 < ex.loss_tokens < len(ex.input_ids)
    assert any("duplicates removed" in line for line in logs)


def test_prepare_data_packs_without_learning_across_examples(tmp_path, tok):
    from studio.worker.data import prepare_data

    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(40))
    cfg = RunConfig().replace("data", {"source": "file", "path": str(f), "packing": True}) \
        .replace("training.max_seq_len", 128)
    data = prepare_data(cfg, tok, lambda _: None)
    assert len(data.train) < 40
    ex = data.train[0]
    assert sum(ex.seq_lens) == len(ex.input_ids) <= 128
    starts = np.cumsum([0] + ex.seq_lens[:-1])
    assert all(ex.labels[s] == IGNORE_INDEX for s in starts)
    assert sum(len(e.seq_lens) for e in data.train) == 40


def test_demo_prepares_fast():
    import time

    from studio.worker.data import prepare_data

    demo_tok = load_tokenizer(__import__("studio.core.paths", fromlist=["x"]).demo_model_dir())
    t = time.perf_counter()
    data = prepare_data(RunConfig(), demo_tok, lambda _: None)
    assert time.perf_counter() - t < 2.0 and len(data.train) > 100


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=12)  # surrogates included
_leaf = st.one_of(st.none(), st.integers(), _text)
_turn = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "gpt", "x"]), "content": _leaf})
_row = st.one_of(
    st.fixed_dictionaries({"instruction": _leaf, "output": _leaf}),
    st.fixed_dictionaries({"messages": st.one_of(st.lists(_turn, max_size=4), _leaf)}),
    st.dictionaries(st.sampled_from(["prompt", "completion", "text", "question", "answer"]), _leaf, max_size=3))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_row, min_size=1, max_size=6))
def test_fuzzed_records_through_the_whole_pipeline(tmp_path, tok, rows):
    from studio.core.data import DataError

    f = write_jsonl(tmp_path / "fuzz.jsonl", rows)
    try:
        s = compute_stats(spec_for(f), tok, max_len=32)
    except DataError as e:
        assert "fuzz.jsonl" in str(e) or "Map your columns" in str(e)
        return
    assert s.usable + s.skipped == s.rows == len(rows)


def test_clean_files_keep_datasets_fast_reader_and_a_long_line_avoids_it(tmp_path, tok, big, monkeypatch):
    import studio.core.data.readers as readers
    from studio.core.data.pipeline import tokenize_dataset

    f = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(50) + [{"instruction": "long", "output": "x" * 5000}])
    assert tokenize_dataset(spec_for(f), tok).rows_numbered  # read by datasets' own (pyarrow) reader
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1000)
    out = tokenize_dataset(spec_for(f), tok, use_cache=False)
    assert not out.rows_numbered  # a line over the cap: the studio's reader, which skips it and says so
    problems = [p for p in out.dataset.data.column("problem").to_pylist() if p]
    assert problems == ["!the line is 4.9 kB long, over the 1,000 bytes a row may take; row skipped without reading "
                        "it. Split or shorten that line."]
