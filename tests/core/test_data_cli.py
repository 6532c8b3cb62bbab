"""`studio data inspect`: report, JSON, problems with locations, exit status."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from data_support import alpaca_rows, write_jsonl  # noqa: E402

from studio.cli import data as data_cli  # noqa: E402


def run(argv, capsys):
    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_inspect_prints_format_evidence_stats_and_problems(tmp_path, capsys):
    f = tmp_path / "qa.jsonl"
    f.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n" for i in range(30))
                 + "{broken\n")
    code, out, _ = run(["data", "inspect", str(f), "--max-len", "16"], capsys)
    assert code == 0
    assert "Format     alpaca: 30 of 31 rows have instruction/output (mapped question -> instruction" in out
    assert "Steps      8 per epoch" in out
    assert f"{f}:31: malformed JSON" in out


def test_inspect_json_and_manual_mapping(tmp_path, capsys):
    f = write_jsonl(tmp_path / "d.jsonl", [{"frage": "q", "antwort": "a"}] * 3)
    code, out, _ = run(["data", "inspect", str(f), "--map", "frage=prompt", "--map", "antwort=completion",
                        "--format", "prompt_completion", "--json", "--no-dedup"], capsys)
    result = json.loads(out)
    assert code == 0 and result["ok"] and result["format"] == "prompt_completion" and result["train_rows"] == 3
    assert result["column_map"] == {"frage": "prompt", "antwort": "completion"}


def test_untrainable_data_exits_non_zero(tmp_path, capsys):
    f = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "x", "output": ""}] * 3)
    code, out, _ = run(["data", "inspect", str(f)], capsys)
    assert code == 1 and "can't be trained on" in out and "`output` is empty" in out
    code, out, err = run(["data", "inspect", str(tmp_path / "missing.jsonl")], capsys)
    assert code == 1 and "file not found" in err
    code, out, err = run(["data", "inspect", str(f), "--map", "oops"], capsys)
    assert code == 2 and "COLUMN=FIELD" in err


def test_hub_id_offline_is_a_plain_message(capsys, monkeypatch):
    import datasets

    def fail(*a, **k):
        raise ConnectionError("Couldn't reach 'someone/data' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    code, out, _ = run(["data", "inspect", "someone/data", "--json"], capsys)
    assert code == 1 and "can't be reached" in json.loads(out)["error"]
