"""The Planner page: which methods fit a GPU, at which micro-batch and length."""
