"""`studio runs` and `studio methods` read as tables a person can scan (issue #13.9)."""

from __future__ import annotations

import typing
from typing import Literal, Optional, Union

from studio.cli.methods import _type_words
from studio.cli.runs import format_table


def test_runs_columns_line_up_and_name_each_run():
    rows = [{"id": "20261202-1-support-bot-long-name", "name": "support-bot-long-name", "state": "stopped",
             "method": "llama_adapter", "steps": 210, "final_loss": 0.1234},
            {"id": "20261202-1-demo-2", "name": "demo", "state": "failed", "method": "prefix_tuning", "steps": None,
             "final_loss": None},
            {"id": "20261202-1-demo", "name": "demo", "state": "completed", "method": "lora", "steps": 7,
             "final_loss": 2.5}]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["ID", "NAME", "STATE", "METHOD", "STEPS", "FINAL", "LOSS"]
    starts = [line.index(word) for line, word in zip(lines[1:], ("stopped", "failed", "completed"))]
    assert len(set(starts)) == 1 and lines[0].index("STATE") == starts[0]
    ends = [line.rindex(word) + len(word) for line, word in zip(lines[1:], ("0.1234", "-", "2.5000"))]
    assert len(set(ends)) == 1 and ends[0] == len(lines[0])  # right-aligned under FINAL LOSS


def test_method_settings_name_their_types_in_words():
    assert _type_words(Union[Literal["all-linear"], list[str]]) == "all-linear | list of str"
    assert _type_words(Optional[int]) == "int | none"
    assert _type_words(typing.Annotated[float, "x"]) == "float"
    assert "Union" not in _type_words(Union[int, str])
