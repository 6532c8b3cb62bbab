"""The export page: turn a finished run into a PEFT adapter folder or a merged model."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("export", "Export", "Take the result with you",
                icon="export", module="studio.ui.pages.export.page", cls="ExportPage",
                needs=("store_root",), lists_runs=True, run_actions=("export",))
