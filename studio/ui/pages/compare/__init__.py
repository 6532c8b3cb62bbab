"""The Compare page: several methods on the same model, data and step budget, side by side."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("compare", "Compare", "Several methods on your data, side by side",
                icon="compare", module="studio.ui.pages.compare.page", cls="ComparePage",
                needs=("store_root", "stop_timeout_s"), plots=True)
