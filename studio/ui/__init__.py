"""The Qt GUI: main window, pages (one folder each), widgets and the worker-process wrapper.

Imports Qt and studio.core only; never torch, transformers or peft (tests enforce it).
"""

from studio.ui import qt_compat as _qt_compat  # noqa: F401  (guards against a PySide6 6.12.0 bug)
