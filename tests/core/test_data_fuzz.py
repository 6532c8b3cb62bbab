"""A seeded sample of the fuzz corpus (one file per category) never produces a traceback.

Each file goes through ``studio data inspect`` and preflight's data check; the readers' files go
through the datasets path too. Every message must name the file, and a skipped row its line; a file
holding binary data or NaN (data_fuzz.MUST_FLAG) must be flagged, never read without a word.
benchmarks/data_fuzz.py runs the whole corpus (20 files per category) and the big sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from data_fuzz import CATEGORIES, Knobs, write_sample  # noqa: E402
from data_fuzz_run import inspect, preflight  # noqa: E402
from data_support import make_tokenizer_dir  # noqa: E402

KNOBS = Knobs(long_line=300_000)
CAP = 200_000  # the readers' line cap for this test, so the 300 kB "long line" cases exceed it
DATASETS_PATH = ("jsonl_", "csv_", "tsv_", "parquet_", "json_lines", "folder_mixed", "arrow_")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("fuzz"), knobs=KNOBS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tokenizer_dir(tmp_path_factory.mktemp("tok"))


@pytest.fixture(autouse=True)
def small_cap(monkeypatch):
    import studio.core.data.readers as readers

    monkeypatch.setattr(readers, "MAX_LINE_BYTES", CAP)


def report(outcomes) -> str:
    lines = []
    for o in outcomes:
        what = o.error.strip().splitlines()[-1] if o.error else "; ".join(o.unplaced)[:300] or "nothing said"
        lines.append(f"{o.case.category} [{o.way}]: {what}")
    return "\n".join(lines)


def test_the_corpus_is_big_and_varied():
    suffixes = {name.split("_")[0] for name in CATEGORIES}
    assert len(CATEGORIES) >= 100 and len(CATEGORIES) * 20 >= 2000
    assert {"jsonl", "json", "csv", "tsv", "parquet", "txt", "folder", "arrow"} <= suffixes


def test_inspect_never_raises_and_names_the_file(corpus, model_dir):
    outcomes = [inspect(case, model_dir) for case in corpus]
    bad = [o for o in outcomes if o.error or o.unplaced or o.silent]
    assert not bad, f"{len(bad)} of {len(outcomes)} cases:\n" + report(bad)


def test_preflight_never_raises_and_names_the_file(corpus):
    outcomes = [preflight(case) for case in corpus]
    bad = [o for o in outcomes if o.error or o.unplaced]
    assert not bad, f"{len(bad)} of {len(outcomes)} cases:\n" + report(bad)


def test_the_datasets_path_never_raises_and_names_the_file(corpus, model_dir, monkeypatch):
    import studio.core.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)  # what a file over 8 MB goes through
    cases = [c for c in corpus if c.category.startswith(DATASETS_PATH)]
    outcomes = [inspect(case, model_dir) for case in cases]
    bad = [o for o in outcomes if o.error or o.unplaced or o.silent]
    assert not bad, f"{len(bad)} of {len(outcomes)} cases:\n" + report(bad)
