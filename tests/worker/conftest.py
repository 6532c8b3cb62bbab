"""Fixtures of the worker tests: the trained demo (``trained_demo``) lives in tests/conftest.py, shared with the
GUI's chat tests."""
