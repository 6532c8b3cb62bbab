"""Run one fuzz case the way a user meets it, and say what went wrong.

Two ways in: ``studio data inspect`` (the CLI function, in process, with ``--json``) and preflight's
data check (``_check_data``, which reads the first 2,000 rows). An exception other than DataError
that escapes either is a traceback the user would see; a message that does not name the file, or a
skipped row reported without its line, is a message the user cannot act on.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from data_fuzz import MUST_FLAG, Case


@dataclass
class Outcome:
    case: Case
    way: str  # "inspect" | "preflight"
    error: str = ""  # the traceback of an exception that escaped
    messages: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # messages without the file, or a skipped row without its line

    @property
    def silent(self) -> bool:
        """A file holding binary data, NaN or the like read with nothing said: its repr would be trained."""
        return self.way == "inspect" and self.case.category in MUST_FLAG and not self.error and not self.messages


def inspect(case: Case, model_dir: Path) -> Outcome:
    from studio.cli import data as data_cli

    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers())
    args = parser.parse_args(["data", "inspect", str(case.path), "--json", "--model", str(model_dir),
                              "--max-len", "64"])
    out, err = io.StringIO(), io.StringIO()
    outcome = Outcome(case, "inspect")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args.func(args)
    except Exception:
        outcome.error = traceback.format_exc(limit=-8)
        return outcome
    result = json.loads(out.getvalue())
    outcome.messages = [result["error"]] if "error" in result else list(result.get("problems", []))
    outcome.unplaced = [m for m in outcome.messages if not placed(m, case.path)]
    return outcome


def preflight(case: Case) -> Outcome:
    from studio.core.config import DataSpec
    from studio.core.preflight import _check_data

    outcome = Outcome(case, "preflight")
    try:
        _check_data(SimpleNamespace(data=DataSpec(source="file", path=str(case.path))), outcome.messages)
    except Exception:
        outcome.error = traceback.format_exc(limit=-8)
        return outcome
    outcome.unplaced = [m for m in outcome.messages if not placed(m, case.path)]
    return outcome


def placed(message: str, path: Path) -> bool:
    """The message names the file (a file inside it, for a folder), and a skipped row names its line."""
    if str(path) not in message:
        return False
    if "row skipped" not in message:
        return True
    return re.search(re.escape(str(path)) + r"[^:\s]*:\d+", message) is not None
