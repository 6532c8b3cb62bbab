"""What a chat can load: a run with its trained weights (final or a checkpoint) or a plain model.

A ``ChatSource`` becomes the chat worker's command line (``worker_args``); ``run_weights`` lists the
weights a run can answer with, and ``adapter_candidates`` the weights of other runs trained on the
same base, which the worker can load next to the first and switch between without reloading the
base (``load_adapter``/``set_adapter``). No Qt and no torch: this reads run and model folders only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from studio.core.chat import base_model_problem, with_base_path
from studio.core.checkpoints import list_checkpoints
from studio.core.runs import Run

FINAL = "final"  # the name the worker gives a run's final adapter (studio.worker.inference.resolve_target)


@dataclass(frozen=True)
class Weights:
    """One set of trained weights of a run: its final adapter or a checkpoint."""

    label: str  # the worker's name for it: "final" or "step-140"
    path: Path
    step: Optional[int] = None  # the checkpoint's step; None for the final weights

    @property
    def title(self) -> str:
        return "Final weights" if self.step is None else f"Checkpoint at step {self.step:,}"


def run_weights(run: Run) -> list[Weights]:
    """The run's trained weights: the final adapter (once saved) first, then its checkpoints, newest first."""
    found = []
    adapter = run.adapter_dir
    if adapter.is_dir() and any(adapter.iterdir()):
        found.append(Weights(FINAL, adapter))
    found += [Weights(f"step-{c.step}", c.path, c.step) for c in reversed(list_checkpoints(run.path))]
    return found


@dataclass(frozen=True)
class ChatSource:
    """A run (with ``weights``, default: what the worker picks, the final or newest) or a plain ``model``."""

    run: Optional[Run] = None
    weights: Optional[Weights] = None
    model: str = ""  # a plain model: a folder or a hub id
    model_title: str = ""  # how to call the plain model ("Demo model", a hub id)
    base_path: str = ""  # the run's base model moved here (``--base-path``)
    _config: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.model):
            raise ValueError("a chat source is a run or a plain model, one of them")

    @property
    def is_run(self) -> bool:
        return self.run is not None

    def config(self) -> Any:
        """The run's config with a located base applied (read once); None for a plain model."""
        if self.run is None:
            return None
        if self._config is None:
            cfg = self.run.config()
            object.__setattr__(self, "_config", with_base_path(cfg, self.base_path) if self.base_path else cfg)
        return self._config

    def located(self, folder: str | Path) -> "ChatSource":
        """The same source with its base model read from ``folder``."""
        return ChatSource(self.run, self.weights, self.model, self.model_title, str(Path(folder).expanduser().resolve()))

    def base_problem(self) -> tuple[str, str]:
        """(where the base model was looked for, what is wrong), ("", "") when it is there (or not checkable)."""
        if self.run is None:
            folder = Path(self.model).expanduser()
            if folder.is_absolute() and not (folder / "config.json").is_file():
                return str(folder), f"There is no model at {folder} (no config.json): choose its folder."
            return "", ""
        return base_model_problem(self.config())

    def worker_args(self) -> tuple[str, ...]:
        """The arguments after ``--worker chat [RUN_DIR]``."""
        if self.run is None:
            return ("--model", self.model)
        args: list[str] = []
        if self.weights is not None and self.weights.step is not None:
            args += ["--checkpoint", str(self.weights.step)]
        elif self.weights is not None and self.weights.label != FINAL:
            args += ["--from", str(self.weights.path)]
        if self.base_path:
            args += ["--base-path", self.base_path]
        return tuple(args)

    def title(self) -> str:
        if self.run is None:
            return self.model_title or Path(self.model).name or self.model
        return run_title(self.run)


def run_title(run: Run) -> str:
    return run.status().get("name") or run.id


def same_base(a: Any, b: Any) -> bool:
    """Whether two run configs train on the same base model (so their adapters can share one loaded base)."""
    return (a.model.source, a.model.path.strip(), a.model.revision) == (b.model.source, b.model.path.strip(),
                                                                        b.model.revision)


def adapter_candidates(source: ChatSource, runs: Iterable[Run], loaded: Iterable[str] = ()) -> list[tuple[str, Weights]]:
    """(name, weights) the worker could load over ``source``'s base: the run's other weights, then those of other
    runs on the same base (named ``run/label``), leaving out the names in ``loaded``."""
    if source.run is None:
        return []
    cfg = source.config()
    taken = set(loaded)
    out: list[tuple[str, Weights]] = []
    for run in [source.run, *[r for r in runs if r.path != source.run.path]]:
        if run.path != source.run.path:
            try:
                if not same_base(cfg, run.config()):
                    continue
            except Exception:  # noqa: BLE001 - an unreadable config is not a candidate
                continue
        for w in run_weights(run):
            name = w.label if run.path == source.run.path else f"{run_title(run)}/{w.label}"
            if name not in taken:
                out.append((name, w))
    return out


def sample_questions(cfg: Any, count: int = 3, sample: int = 200) -> list[str]:
    """The first user message of ``count`` examples spread over the first rows of the run's data (questions to
    start a chat with); [] when the data cannot be read any more."""
    from studio.core.data.errors import DataError
    from studio.core.data.formats import to_conversations
    from studio.core.data.loaders import iter_records
    from studio.core.data.pipeline import head_detection

    try:
        source, detection, _ = head_detection(cfg.data, sample=sample)
        rows = [row for _, (_, _, row) in zip(range(sample), iter_records(source, []))]
        questions = [next((t["content"] for t in conv if t.get("role") == "user"), "")
                     for conv in to_conversations(rows, detection)]
    except (DataError, OSError, ValueError):
        return []
    questions = [q.strip() for q in questions if q and q.strip()]
    if len(questions) <= count:
        return questions
    step = len(questions) / count
    return [questions[int(i * step)] for i in range(count)]
