"""The headless command line: `studio train|export|data|estimate|plan|runs ...`.

Each subcommand lives in its own module under studio.cli and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` (taking the parsed args, returning an exit status).
Modules are imported only when the CLI runs, and none imports torch at import time.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

from studio import __version__

# Subcommand modules, in help order. Add a module here to add a command.
COMMAND_MODULES = [
    "studio.cli.train",
    "studio.cli.export",
    "studio.cli.runs",
    "studio.cli.data",
    "studio.cli.estimate",
    "studio.cli.plan",
    "studio.cli.compare",
    "studio.cli.methods",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Fine-tune language models on your own GPU. Run without arguments to open the studio.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
