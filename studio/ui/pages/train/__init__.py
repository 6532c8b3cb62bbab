"""The train page: start and stop a run, live curves, speed, progress, GPU, log."""
