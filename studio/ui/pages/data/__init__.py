"""The Data page: pick a dataset, see it raw and as the model sees it, check its statistics."""
