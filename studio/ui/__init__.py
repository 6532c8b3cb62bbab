"""The Qt GUI: main window, pages (one folder each), widgets and the worker-process wrapper.

Imports Qt and studio.core only; never torch, transformers or peft (tests enforce it).
"""
