"""The train page: start and stop a run, live curves, speed, progress, GPU, log."""

from studio.ui.pages.spec import PageSpec

PAGE = PageSpec("train", "Train", "Run it and watch it learn",
                icon="train", module="studio.ui.pages.train.page", cls="TrainPage",
                needs=("gpu_monitor", "stop_timeout_s", "store_root"), plots=True, run_actions=("resume", "attach"))
