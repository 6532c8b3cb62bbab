"""Entry point: `studio` opens the GUI; `studio COMMAND ...` runs the CLI; `--worker` runs a worker.

The frozen app's executable has the same entry, so the GUI starts its workers as
``<executable> --worker ...`` when frozen and ``python -m studio --worker ...`` from source.
"""

from __future__ import annotations

import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--worker":
        from studio.worker.main import main as worker_main

        return worker_main(argv[1:])
    if argv and (not argv[0].startswith("-") or argv[0] in ("-h", "--help", "--version")):
        from studio.cli import main as cli_main

        return cli_main(argv)
    from studio.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
