"""Entry point: `studio` opens the GUI; `studio COMMAND ...` runs the CLI; `--worker` runs a worker.

`studio CONFIG.yaml` opens the GUI on that run config. Any other argument goes to the CLI's
parser, so an unknown option is reported as an error instead of silently opening the GUI.

The frozen app's executable has the same entry, so the GUI starts its workers as
``<executable> --worker ...`` when frozen and ``python -m studio --worker ...`` from source.
``--version``, ``--diagnose [--json]`` and ``--self-test [CHECK...]`` describe and test the
installation itself (see studio.core.diagnostics and studio.selftest).
"""

from __future__ import annotations

import sys
from typing import Optional


INSTALLATION_COMMANDS = ("--version", "--diagnose", "--self-test")
CONFIG_SUFFIXES = (".yaml", ".yml")


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--worker":
        from studio.worker.main import main as worker_main

        return worker_main(argv[1:])
    if argv and argv[0] in INSTALLATION_COMMANDS:
        return _installation_command(argv)
    if not argv or _is_config_file(argv):
        from studio.app import main as gui_main

        return gui_main(config_path=argv[0] if argv else None)
    # Everything else is the command line's: an unknown option is an error there, never the GUI.
    from studio.cli import main as cli_main

    return cli_main(argv)


def _is_config_file(argv: list[str]) -> bool:
    """`studio run.yaml` (or a file dropped on the menu entry) opens the studio on that config."""
    from pathlib import Path

    return len(argv) == 1 and argv[0].lower().endswith(CONFIG_SUFFIXES) and Path(argv[0]).is_file()


def _installation_command(argv: list[str]) -> int:
    if argv[0] == "--version":
        from studio.core.diagnostics import stack_versions

        versions = stack_versions()
        print(f"studio {versions.pop('studio')}")
        for name, version in versions.items():
            print(f"  {name:<20} {version or 'not installed'}")
        return 0
    if argv[0] == "--diagnose":
        from studio.core import diagnostics

        runtime = diagnostics.probe_runtime()
        if "--json" in argv[1:]:
            import json

            print(json.dumps(runtime))  # what the GUI's diagnostics dialog reads from this child
        else:
            print(diagnostics.collect_report(runtime).to_text(), end="")
        return 0
    from studio.selftest import run_self_test

    return run_self_test(only=argv[1:] or None)


if __name__ == "__main__":
    # PyInstaller: a frozen multiprocessing child re-enters here; freeze_support() runs it and exits
    import multiprocessing

    multiprocessing.freeze_support()
    sys.exit(main())
