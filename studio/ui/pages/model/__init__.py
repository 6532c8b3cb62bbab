"""The model page: pick the demo, a local folder, a model from the HF cache, or a hub id."""
