"""The Data page: pick a dataset, see it raw and as the model sees it, check its statistics."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("data", "Data", "Your examples: format, preview and checks",
                icon="data", module="studio.ui.pages.data.page", cls="DataPage")
