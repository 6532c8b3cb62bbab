"""The runs page: every past and live run, with its curves, evaluation, config and log read from disk."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("runs", "Runs", "Every run, its curves, evaluation, config and log",
                icon="runs", module="studio.ui.pages.runs.page", cls="RunsPage",
                needs=("store_root", "run_actions"), plots=True, lists_runs=True)
