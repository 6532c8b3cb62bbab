"""The model page: pick the demo, a local folder, a model from the HF cache, or a hub id."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("model", "Model", "The base model you fine-tune",
                icon="model", module="studio.ui.pages.model.page", cls="ModelPage")
