"""Data errors and problems, phrased for the person who owns the file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


class DataError(ValueError):
    """The data cannot be used at all. The message says where and what to do."""


@dataclass(frozen=True)
class Problem:
    """Something wrong with part of the data that does not stop training (rows are skipped)."""

    message: str
    file: str = ""
    line: Optional[int] = None  # 1-based line (text formats) or row number (tabular)
    severity: str = "warning"  # "warning" | "error"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"row {self.line}"
        return f"{where}: {self.message}" if where else self.message
