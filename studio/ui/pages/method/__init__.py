"""The method page: fine-tuning method, its settings, training hyperparameters, the run's name."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("method", "Method", "How the model learns, and every training setting",
                icon="method", module="studio.ui.pages.method.page", cls="MethodPage")
