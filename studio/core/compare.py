"""Method comparisons: the same model, data and step budget trained with several methods.

``comparison_configs`` builds one RunConfig per method from a base config (shared knobs such as
rank and target modules carry over; each method's learning rate is the base's, scaled by the
ratio of the methods' recommended rates, unless the caller keeps one rate for all). ``create_comparison`` stores them as ordinary runs in the RunStore,
tagged in status.json with a comparison id, so history, logs and export work as for any run.
``summarise_run`` turns a finished run's events into one table row; ``format_table`` prints rows
as markdown. The runs themselves are launched by the caller (the CLI or the Compare page), one
worker process after another.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Optional

from pydantic import ValidationError

from studio.core.config import RunConfig
from studio.core.methods import method_class, method_names
from studio.core.runs import Run, RunStore
from studio.core.training_defaults import scaled_lr

DEFAULT_METHODS = ("lora", "dora", "ia3", "prompt_tuning")


class CompareError(ValueError):
    """A comparison that cannot be set up; the message says what to change."""


def parse_methods(text: str | Iterable[str]) -> list[str]:
    """``"lora, dora"`` -> ["lora", "dora"], checking every name; duplicates are dropped."""
    items = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in items if m not in method_names()]
    if unknown:
        raise CompareError(f"unknown method {', '.join(unknown)}; choose from {', '.join(method_names())}")
    if not items:
        raise CompareError("name at least one method to compare")
    return list(dict.fromkeys(items))


def method_for(base: RunConfig, name: str) -> Any:
    """Method ``name`` with the settings it shares with the base's method (rank, alpha, targets ...)."""
    cls = method_class(name)
    old = base.method.model_dump()
    shared = {k: v for k, v in old.items() if k in cls.model_fields and k != "name"}
    try:
        return cls(**shared)
    except ValidationError:
        return cls()


def comparison_configs(base: RunConfig, methods: Iterable[str], steps: Optional[int] = None,
                       same_lr: bool = False, facts: Any = None) -> list[RunConfig]:
    """One config per method; everything but the method (and its learning rate) is the base's.

    With the model's ``facts``, methods other than the base's own are fitted to the model where
    their defaults cannot apply (VB-LoRA's vector length must divide the layer widths).
    """
    out = []
    for name in parse_methods(methods):
        method = method_for(base, name)
        if facts is not None and name != base.method.name:
            method = method.fitted(facts)
        data = base.to_dict()
        data["method"] = method.model_dump(mode="json")
        data["name"] = f"{base.name}-{name}"[:80]
        if steps is not None:
            data["training"]["max_steps"] = int(steps)
        if not same_lr:
            data["training"]["learning_rate"] = scaled_lr(base, name)
        out.append(RunConfig.from_dict(data))
    return out


def model_facts(cfg: RunConfig) -> Any:
    """The config's model facts, or None when they cannot be read (the worker will say why)."""
    from studio.core.models import ModelError, resolve_facts

    try:
        return resolve_facts(cfg.model.source, cfg.model.path)
    except (ModelError, OSError, ValueError):
        return None


def new_comparison_id() -> str:
    return time.strftime("cmp-%Y%m%d-%H%M%S")


def create_comparison(store: RunStore, configs: list[RunConfig], comparison_id: Optional[str] = None) -> list[Run]:
    """Create one run per config, tagged with the comparison id, in launch order."""
    cid = comparison_id or new_comparison_id()
    runs = []
    for i, cfg in enumerate(configs):
        run = store.create(cfg)
        run.write_status(comparison=cid, comparison_index=i, comparison_method=cfg.method.name)
        runs.append(run)
    return runs


def comparison_runs(store: RunStore | Iterable[Run], comparison_id: str) -> list[Run]:
    """The runs of one comparison, in launch order, from a store or a list of runs (run_roots.all_runs)."""
    runs = [r for r in _runs_of(store) if r.status().get("comparison") == comparison_id]
    return sorted(runs, key=lambda r: r.status().get("comparison_index", 0))


def comparison_ids(store: RunStore | Iterable[Run]) -> list[str]:
    """Comparisons in the store (or among the runs, newest first), newest first."""
    seen: dict[str, None] = {}
    for r in _runs_of(store):
        cid = r.status().get("comparison")
        if cid:
            seen.setdefault(cid, None)
    return list(seen)


def _runs_of(store: RunStore | Iterable[Run]) -> Iterable[Run]:
    return store.list() if isinstance(store, RunStore) else store


@dataclass
class MethodResult:
    """One row of the comparison table, read from a run's events."""

    run_id: str
    method: str
    title: str
    state: str
    learning_rate: float
    trainable_params: Optional[int] = None
    total_params: Optional[int] = None
    train_s: Optional[float] = None  # time in the training loop
    wall_s: Optional[float] = None  # worker start to finish (loading and saving included)
    tokens_per_s: Optional[float] = None
    peak_mem: Optional[int] = None  # bytes (CUDA peak allocated); None on the CPU
    final_loss: Optional[float] = None
    final_val_loss: Optional[float] = None
    steps: int = 0
    message: str = ""
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    val_curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def trainable_share(self) -> Optional[float]:
        if not self.trainable_params or not self.total_params:
            return None
        return self.trainable_params / self.total_params

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trainable_share"] = self.trainable_share
        return d


def summarise_events(events: list[dict[str, Any]], *, run_id: str = "", method: str = "", state: str = "",
                     learning_rate: float = 0.0) -> MethodResult:
    cls = method_class(method) if method in method_names() else None
    row = MethodResult(run_id=run_id, method=method, title=cls.info.title if cls else method, state=state,
                       learning_rate=learning_rate)
    first_t = last_t = None
    peak = None
    for ev in events:
        t = ev.get("t")
        if isinstance(t, (int, float)):
            first_t = t if first_t is None else first_t
            last_t = t
        kind = ev.get("type")
        if kind == "plan":
            row.trainable_params = ev.get("trainable_params", row.trainable_params)
            row.total_params = ev.get("total_params", row.total_params)
        elif kind == "step" and isinstance(ev.get("loss"), (int, float)):
            row.loss_curve.append((int(ev["step"]), float(ev["loss"])))
            row.final_loss = float(ev["loss"])
            row.steps = int(ev["step"])
            row.train_s = ev.get("elapsed_s", row.train_s)
            if ev.get("tokens") and ev.get("elapsed_s"):
                row.tokens_per_s = round(ev["tokens"] / max(ev["elapsed_s"], 1e-9), 1)
            for key in ("mem_peak_allocated",):
                if isinstance(ev.get(key), (int, float)):
                    peak = max(peak or 0, int(ev[key]))
        elif kind == "eval" and isinstance(ev.get("val_loss"), (int, float)):
            row.val_curve.append((int(ev.get("step", 0)), float(ev["val_loss"])))
            row.final_val_loss = float(ev["val_loss"])
        elif kind == "done":
            row.state = ev.get("status", row.state)
            row.message = ev.get("message", "") or row.message
        elif kind == "error" and not row.message:
            row.message = ev.get("message", "")
    row.peak_mem = peak
    if first_t is not None and last_t is not None:
        row.wall_s = round(last_t - first_t, 2)
    return row


def summarise_run(run: Run) -> MethodResult:
    try:
        cfg = run.config()
        method, lr = cfg.method.name, cfg.training.learning_rate
    except Exception:  # a damaged config still gets a row, from its status
        method, lr = run.status().get("comparison_method", "?"), 0.0
    return summarise_events(run.events(), run_id=run.id, method=method, state=run.state, learning_rate=lr)


# ---- presentation -------------------------------------------------------------------------------

TABLE_COLUMNS = ("Method", "Trainable", "%", "LR", "Train time", "Tokens/s", "Peak mem", "Train loss",
                 "Val loss", "State")


def fmt_count(n: Optional[int]) -> str:
    if n is None:
        return "—"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def fmt_bytes(n: Optional[int]) -> str:
    return "—" if n is None else f"{n / 2**30:.2f} GiB"


def fmt_float(v: Optional[float], digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}g}"


def table_cells(row: MethodResult) -> list[str]:
    share = row.trainable_share
    return [
        row.title, fmt_count(row.trainable_params), "—" if share is None else f"{share * 100:.3g}",
        f"{row.learning_rate:.2g}", "—" if row.train_s is None else f"{row.train_s:.1f} s",
        "—" if row.tokens_per_s is None else f"{row.tokens_per_s:,.0f}", fmt_bytes(row.peak_mem),
        fmt_float(row.final_loss), fmt_float(row.final_val_loss), row.state,
    ]


def format_table(rows: list[MethodResult]) -> str:
    """The comparison as a markdown table."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)
