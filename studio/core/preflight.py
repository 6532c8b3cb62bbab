"""Problems that would make a run fail, found before any process starts.

``preflight(cfg)`` returns the blocking problems as sentences a user can act on (an empty list
means: go). The GUI shows them beside its Train button and the CLI prints them and exits; both
call this one function, so a run the GUI refuses is refused by the CLI for the same reason.
Only cheap checks live here (no torch, a bounded read of the dataset): anything that needs the
model loaded is the worker's job.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

MIN_FREE_BYTES = 1 << 30  # adapters are small, but checkpoints, logs and exports need room
_PREVIEW_ROWS = 2000
HUB_TIMEOUT_S = 3.0  # per request; a hub that does not answer by then would not serve a download either
HUB_ANSWER_TTL_S = 30.0
_HUB_ANSWERS: dict[tuple, tuple[Optional[float], Optional[str]]] = {}


def preflight(cfg: Any, *, has_cuda: Optional[bool] = None, has_bitsandbytes: Optional[bool] = None) -> list[str]:
    problems: list[str] = []
    facts = _check_model(cfg, problems)
    _check_data(cfg, problems)
    _check_method(cfg, facts, problems, has_cuda, has_bitsandbytes)
    _check_output(cfg, problems)
    return problems


def _check_model(cfg: Any, problems: list[str]) -> Any:
    from studio.core.models import ModelError, find_in_hf_cache, inspect_model
    from studio.core.paths import demo_model_dir

    m = cfg.model
    folder: Optional[Path] = None
    if m.source == "demo":
        folder = demo_model_dir()
        if not (folder / "config.json").exists():
            problems.append(f"The demo model is missing from {folder}; reinstall the studio "
                            "(or run resources/build_demo.py from a source checkout).")
            return None
    elif m.source == "local":
        folder = Path(m.path).expanduser()
        if not folder.is_dir():
            problems.append(f"Model folder not found: {folder}. Pick the folder that holds config.json.")
            return None
        if not (folder / "config.json").exists():
            nested = sorted(p.parent for p in folder.glob("*/config.json"))
            hint = f" (there is one in {nested[0]}; pick that folder)" if nested else ""
            problems.append(f"{folder} has no config.json, so it is not a Hugging Face model folder{hint}.")
            return None
    else:
        folder = find_in_hf_cache(m.path)
        if folder is None:
            problem = _hub_fetch_problem(m.path)
            if problem:
                problems.append(problem)
            return None  # it can be fetched: the worker downloads it
    try:
        facts = inspect_model(folder)
    except ModelError as e:
        problems.append(str(e))
        return None
    if not getattr(facts, "has_weights", True):
        problems.append(f"{folder} has a config.json but no weights (*.safetensors or *.bin); "
                        "the download may be incomplete.")
    return facts


def _hub_fetch_problem(repo_id: str, repo_type: str = "model") -> Optional[str]:
    """Why a hub model (or dataset) that is not in the cache cannot be downloaded now (a few seconds at most).

    The hub's answer is kept for HUB_ANSWER_TTL_S: a comparison checks one config per method."""
    import time

    from studio.core import hub

    key = (repo_id, repo_type, hub.endpoint(), hub.offline_mode())
    asked_at, reason = _HUB_ANSWERS.get(key, (None, None))
    if asked_at is None or time.monotonic() - asked_at > HUB_ANSWER_TTL_S:
        reason = hub.fetch_problem(repo_id, timeout_s=HUB_TIMEOUT_S, repo_type=repo_type)
        _HUB_ANSWERS[key] = (time.monotonic(), reason)
    if reason is None:
        return None
    if repo_type == "dataset":
        have = "pick a dataset file or folder you have"
        where = "try again once the hub can be reached"
    else:
        have = "pick a model you have (the demo, a local folder, or one from your Hugging Face cache)"
        where = "Download it on the Model page once the hub can be reached"
    if hub.offline_mode() or "cannot be reached" in reason or "did not answer" in reason:
        return f"{repo_id} is not downloaded, and it cannot be downloaded now. {reason} {where}, or {have}."
    return f"{repo_id} is not downloaded and cannot be downloaded: {reason} Or {have}."


def _check_data(cfg: Any, problems: list[str]) -> None:
    from studio.core.data import DataError, detect_format, load_dataset_rows, to_conversations

    spec = cfg.data
    if spec.source == "hub":
        from studio.core.hub import dataset_cached

        # Reading it may mean downloading it (the worker reports what is wrong inside); one that is not
        # here and cannot be fetched is refused now instead of after the worker's retries.
        problem = None if dataset_cached(spec.path) else _hub_fetch_problem(spec.path, "dataset")
        if problem:
            problems.append(problem)
        return
    specs = [spec]
    if spec.validation_path:
        specs.append(spec.model_copy(update={"path": spec.validation_path, "source": "file"}))
    for s in specs:
        try:
            loaded = load_dataset_rows(s, limit=_PREVIEW_ROWS)
            detection = detect_format(loaded.rows, s.column_map, s.format, loaded.source)
            found: list[Any] = []
            convs = to_conversations(loaded.rows, detection, found, loaded.source)
        except DataError as e:
            problems.append(str(e))
            continue
        except OSError as e:
            problems.append(f"{s.path}: cannot read the dataset ({e.strerror or e}).")
            continue
        if not convs:
            first = f" First problem: {found[0]}" if found else ""
            problems.append(f"{loaded.source}: none of the first {len(loaded.rows)} rows can be used as "
                            f"{detection.format} examples.{first}")


def _check_method(cfg: Any, facts: Any, problems: list[str], has_cuda: Optional[bool],
                  has_bitsandbytes: Optional[bool]) -> None:
    from studio.core import gpu

    if has_cuda is None:
        has_cuda = gpu.has_cuda_gpu()
    if has_bitsandbytes is None:
        has_bitsandbytes = gpu.has_bitsandbytes()
    cls = type(cfg.method)
    avail = cls.availability(has_cuda=has_cuda, has_bitsandbytes=has_bitsandbytes, facts=facts)
    if not avail.ok:
        problems.append(avail.reason)
    if facts is not None and hasattr(cfg.method, "problems"):
        problems.extend(cfg.method.problems(facts))
    if cfg.training.device == "cuda" and not has_cuda:
        problems.append("Device is set to 'cuda' but no NVIDIA GPU was found; set Device to 'auto' or 'cpu'.")
    if cfg.training.precision == "fp16" and not has_cuda:
        problems.append("fp16 precision needs a GPU; on the CPU use 'auto' (fp32) or bf16.")


def _check_output(cfg: Any, problems: list[str]) -> None:
    from studio.core.paths import runs_root

    root = Path(cfg.output_dir).expanduser() if cfg.output_dir else runs_root()
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        problems.append(f"Output folder {root} cannot be created: {existing} is not a folder.")
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".studio-write-test-"):
            pass
    except OSError as e:
        problems.append(f"Output folder {root} is not writable ({e.strerror or e}); choose another folder.")
        return
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        problems.append(f"Only {free / 2**20:.0f} MiB free on the disk of {root}; free at least "
                        f"{MIN_FREE_BYTES / 2**30:.0f} GiB for checkpoints and exports, or choose another output folder.")
