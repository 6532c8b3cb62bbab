"""The training process: loads a model, applies a method, trains, saves and exports. Never imports Qt."""
