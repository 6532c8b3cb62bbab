"""The runs page: every past and live run, with its curves, config and log read from disk."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("runs", "Runs", "Every run, its curves, config and log",
                icon="runs", module="studio.ui.pages.runs.page", cls="RunsPage",
                needs=("store_root",), plots=True, lists_runs=True)
