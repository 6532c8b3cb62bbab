"""The headless command line: `studio train|export|chat|eval|push|hub|download|data|estimate|plan|runs ...`.

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
    "studio.cli.chat",
    "studio.cli.evaluate",
    "studio.cli.push",
    "studio.cli.hub",
    "studio.cli.download",
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
        description="Fine-tune language models on your own GPU. Run without arguments to open the studio, "
                    "or with a run config (studio run.yaml) to open it on that config.",
        epilog="Run 'studio COMMAND --help' for a command's options.",
    )
    # studio.__main__ answers these three before this parser runs; they are here to be listed and to
    # keep working when the parser is reached directly (studio.cli.main).
    parser.add_argument("--version", action="store_true", help="print the studio's version and its stack's, and exit")
    parser.add_argument("--diagnose", action="store_true",
                        help="describe this machine and installation (OS, GPUs, driver, CUDA, disk), and exit")
    parser.add_argument("--self-test", nargs="*", metavar="CHECK",
                        help="check every part of the installation and train the demo for 2 steps; "
                             "name CHECKs (e.g. torch worker) to run only those")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version or args.diagnose or args.self_test is not None:
        from studio.__main__ import _installation_command

        if args.version:
            return _installation_command(["--version"])
        if args.diagnose:
            return _installation_command(["--diagnose"])
        return _installation_command(["--self-test", *args.self_test])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
