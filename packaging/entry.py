"""The frozen app's entry script: the same executable is the GUI, the CLI and the worker.

multiprocessing.freeze_support() must run first: a frozen multiprocessing child (torch's or
datasets' worker pools) re-executes this executable, and freeze_support() runs the child's job
and exits instead of opening a second studio.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from studio.__main__ import main

    sys.exit(main())
