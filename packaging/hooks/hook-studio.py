"""The studio's own packages: the UI pages and worker methods are found by name (registries)."""
from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("studio")
