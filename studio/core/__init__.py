"""Pure-Python heart of the studio: configs, catalogs, data formats, estimator, protocol, run store.

Nothing here imports Qt, and nothing imports torch at module import time (tests enforce it).
"""
