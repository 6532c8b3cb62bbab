"""The Planner page: which methods fit a GPU, at which micro-batch and length."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("planner", "Planner", "What fits your GPU, and how fast",
                icon="planner", module="studio.ui.pages.planner.page", cls="PlannerPage",
                plots=True)
