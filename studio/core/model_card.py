"""The model card of an exported run: README.md (with Hub metadata) and its loss-curves image.

One generator for every place a card is written: the export worker puts it in the exported
folder, and a push to the Hugging Face Hub uploads a fresh one (the repo id in the usage code,
and a verification verdict that may have arrived after the export). ``build_card`` reads only
the run folder and the exported folder, never torch:

- YAML front matter: ``base_model`` (when the base is known by a hub id), ``library_name``
  (``peft`` for a PEFT adapter, ``transformers`` for a merged model), ``license`` (from the base
  model's own card, when the base is on this disk), ``pipeline_tag`` and ``tags`` (``studio``,
  the method, ``gguf`` for GGUF files);
- base model, method and its settings, training settings, and the final training and
  validation losses (``status.json``, the ``plan`` event);
- the data: source (a file's name, never its folder: a card may be published), format, template,
  rows, train/validation split and tokens (the ``plan`` event's ``data``);
- ``curves.png``: training and validation loss by step (studio.core.curves_png);
- an evaluation table when ``RUN_DIR/eval/latest.json`` exists: the eval worker's ``rows`` (one per
  weights: validation loss, perplexity, exact match, ROUGE-L, BLEU, chrF; the ``best`` marked), or,
  read leniently, numbers at its top level or under ``metrics`` (a metric that maps to several
  numbers, ``{"base": .., "tuned": ..}``, gets one column per key);
- the verification verdict when the exported folder has ``verification.json`` (the export's
  check): ``verdict`` (or ``passed`` true/false, or ``status``), ``summary`` (or ``message``) and
  what was checked (``criteria``, ``inputs``);
- how to use it: transformers/PEFT code, or llama.cpp and Ollama for GGUF.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from studio.core.curves_png import loss_curves_png
from studio.core.runs import Run

README = "README.md"
CURVES = "curves.png"
EVAL_FILE = Path("eval") / "latest.json"
VERIFICATION_FILE = "verification.json"
KIND_TITLES = {"adapter": "adapter", "merged": "merged model", "gguf": "GGUF model"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelCard:
    """The card's files by name: README.md, and curves.png when the run logged a curve."""

    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.files[README].decode("utf-8")

    def write(self, folder: Path) -> None:
        for name, data in self.files.items():
            (Path(folder) / name).write_bytes(data)


@dataclass(frozen=True)
class BaseModel:
    """What the card says about the base model: its name, its hub id if it has one, a folder to read."""

    name: str
    hub_id: Optional[str]
    folder: Optional[Path]


def build_card(run: Run, kind: str, *, folder: Optional[Path] = None, repo_id: Optional[str] = None,
               cfg: Any = None) -> ModelCard:
    """The card for ``run`` exported as ``kind`` (adapter, merged, gguf) into ``folder``, to live at ``repo_id``."""
    cfg = cfg if cfg is not None else run.config()
    folder = Path(folder) if folder is not None else None
    events = run.events()
    plan = next((e for e in reversed(events) if e.get("type") == "plan"), {})
    base = base_model(cfg)
    curves = loss_curves_png(_points(events, "step", "loss"), _points(events, "eval", "val_loss"))
    peft = kind == "adapter" and (folder is None or (folder / "adapter_config.json").exists())
    lines = [_front_matter(cfg, kind, base, peft), f"# {cfg.name}", "", _summary(cfg, kind, base), ""]
    lines += _training(cfg, base, run.status(), plan)
    lines += _data(cfg, plan.get("data") or {})
    if curves:
        lines += ["## Training curves", "", f"![Training and validation loss by step]({CURVES})", "",
                  "Training loss (blue line) and validation loss (orange points) by optimizer step.", ""]
    lines += _evaluation(run.path / EVAL_FILE)
    lines += _verification(folder / VERIFICATION_FILE if folder else None)
    lines += _usage(kind, base, repo_id, folder, peft)
    card = ModelCard({README: "\n".join(lines).encode("utf-8")})
    if curves:
        card.files[CURVES] = curves
    return card


def base_model(cfg: Any) -> BaseModel:
    """The base model's display name, hub id (from the config, a HF cache path or its config.json) and folder."""
    from studio.core.models import find_in_hf_cache

    if cfg.model.source == "demo":
        from studio.core.paths import demo_model_dir

        return BaseModel("the studio's demo model", None, demo_model_dir())
    path = cfg.model.path.strip()
    if cfg.model.source == "hub":
        return BaseModel(path, path, find_in_hf_cache(path))
    folder = Path(path).expanduser()
    hub_id = next((p[len("models--"):].replace("--", "/") for p in folder.parts if p.startswith("models--")), None)
    if hub_id is None:
        named = _read_json(folder / "config.json").get("_name_or_path")
        if isinstance(named, str) and _HUB_ID.match(named) and not Path(named).expanduser().exists():
            hub_id = named
    return BaseModel(hub_id or folder.name, hub_id, folder)


def _front_matter(cfg: Any, kind: str, base: BaseModel, peft: bool) -> str:
    meta: dict[str, Any] = {}
    if base.hub_id:
        meta["base_model"] = base.hub_id
    if peft:
        meta["library_name"] = "peft"
    elif kind == "merged":
        meta["library_name"] = "transformers"
    license_ = _base_license(base.folder)
    if license_:
        meta["license"] = license_
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = ["studio", cfg.method.name] + (["gguf"] if kind == "gguf" else [])
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def _summary(cfg: Any, kind: str, base: BaseModel) -> str:
    title = type(cfg.method).info.title
    what = KIND_TITLES.get(kind, kind)
    if kind == "adapter":
        return f"A {title} {what} for {_code(base)}, fine-tuned with the studio."
    return f"{_code(base)} fine-tuned with {title} in the studio, as a {what}."


def _training(cfg: Any, base: BaseModel, status: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    t = cfg.training
    method = cfg.method
    settings = [f"{(f.title or name)} {_value(getattr(method, name))}"
                for name, f in type(method).model_fields.items()
                if name != "name" and getattr(method, name) not in ("", None, {}, [])]
    steps = status.get("steps")
    total = status.get("total_steps") or plan.get("total_steps")
    run_length = f"{steps} of {total} steps" if steps is not None and total and steps != total else \
        f"{steps if steps is not None else total or '?'} steps"
    if plan.get("epochs"):
        run_length += f" ({plan['epochs']:g} epochs)"
    ended = status.get("ended")
    rows = [
        ("Base model", _code(base) + ("" if base.hub_id or cfg.model.source == "demo" else " (a local folder)")),
        ("Method", f"{type(method).info.title}: {', '.join(settings)}"),
        ("Run length", run_length),
        ("Learning rate", f"{t.learning_rate:g}, {t.lr_scheduler} schedule, {t.warmup_ratio:.0%} warm-up"),
        ("Batch", f"{t.batch_size} rows x {t.grad_accum} accumulation = {t.batch_size * t.grad_accum} rows a step"),
        ("Max length", f"{t.max_seq_len} tokens"),
        ("Optimizer", f"{t.optimizer}, weight decay {t.weight_decay:g}, gradient clipping {t.max_grad_norm:g}"),
        ("Precision", f"{plan['precision']} on {plan['device']}" if plan.get("precision") else None),
        ("Seed", str(t.seed)),
        ("Final training loss", _loss(status.get("final_loss"))),
        ("Final validation loss", _loss(status.get("val_loss"))),
        ("Trained", time.strftime("%Y-%m-%d", time.localtime(ended)) if ended else None),
    ]
    return ["## Training", ""] + _table(("", ""), [r for r in rows if r[1]]) + [""]


def _data(cfg: Any, data: dict[str, Any]) -> list[str]:
    d = cfg.data
    stats = data.get("stats") or {}
    if d.source == "demo":
        source = "the studio's demo dataset"
    elif d.source == "hub":
        source = f"`{d.path}` on the Hugging Face Hub" + (f", subset {d.subset}" if d.subset else "") + \
            f", split {d.split}"
    else:
        source = f"`{Path(d.path).name}` (a local file)"
    rows = [("Source", source),
            ("Format", f"{data.get('format') or d.format}" + (f": {data['evidence']}" if data.get("evidence") else "")),
            ("Template", f"{stats.get('template') or d.template}, loss on {d.train_on}")]
    if data.get("rows") is not None:
        dropped = [f"{data[k]} {label}" for k, label in (("skipped", "skipped"), ("duplicates", "duplicates dropped"),
                                                         ("truncated", "truncated"), ("dropped", "too long, dropped"))
                   if data.get(k)]
        rows.append(("Rows", f"{data['rows']:,} read: {data.get('train_rows', '?'):,} for training, "
                             f"{data.get('val_rows', 0):,} for validation" + (f" ({', '.join(dropped)})" if dropped
                                                                              else "")))
    if stats.get("train_tokens"):
        rows.append(("Tokens", f"{stats['train_tokens']:,} training tokens, {stats.get('loss_tokens', 0):,} carry loss"))
    if d.packing:
        rows.append(("Packing", "sequences packed together"))
    return ["## Data", ""] + _table(("", ""), rows) + [""]


# The columns of an evaluation result's rows (studio.worker.evaluate), in this order, with these titles.
EVAL_COLUMNS = {"val_loss": "validation loss", "perplexity": "perplexity", "exact_match": "exact match",
                "rouge_l": "ROUGE-L", "bleu": "BLEU", "chrf": "chrF"}


def _evaluation(path: Path) -> list[str]:
    data = _read_json(path)
    if isinstance(data.get("rows"), list):
        return _evaluation_rows(data)
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else data
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, value in metrics.items():
        if _number(value):
            rows.append((name, {"value": value}))
        elif isinstance(value, dict) and any(_number(v) for v in value.values()):
            rows.append((name, {k: v for k, v in value.items() if _number(v)}))
    if not rows:
        return []
    columns = list(dict.fromkeys(k for _, values in rows for k in values))
    body = [(name, *(_value(values.get(c, "")) for c in columns)) for name, values in rows]
    note = next((f"On {data[k]} examples." for k in ("examples", "n", "rows") if _number(data.get(k))), "")
    return ["## Evaluation", ""] + _table(("metric", *columns), body) + ([""] + [note] if note else []) + [""]


def _evaluation_rows(data: dict[str, Any]) -> list[str]:
    """The eval worker's result: one row per weights (the base, checkpoints, final), metrics 0-100."""
    rows = [r for r in data["rows"] if isinstance(r, dict) and r.get("label")]
    columns = [c for c in EVAL_COLUMNS if any(_number(r.get(c)) for r in rows)]
    if not columns:
        return []
    best = data.get("best")
    body = [(str(r["label"]) + (" (best)" if r["label"] == best else ""),
             *(_value(round(r[c], 4)) if _number(r.get(c)) else "" for c in columns)) for r in rows]
    prompts = data.get("prompts") if isinstance(data.get("prompts"), dict) else {}
    scored = (data.get("throughput") or {}).get("prompts") if isinstance(data.get("throughput"), dict) else None
    source = (f"`{Path(str(prompts.get('path', ''))).name}`" if prompts.get("source") == "file"
              else "the run's validation rows")
    note = (f"Validation loss on the run's validation rows; answers generated for {scored} prompts from {source}, "
            "scored 0-100 against the references." if scored else "")
    return ["## Evaluation", ""] + _table(("weights", *(EVAL_COLUMNS[c] for c in columns)), body) + \
        ([""] + [note] if note else []) + [""]


def _verification(path: Optional[Path]) -> list[str]:
    data = _read_json(path) if path else {}
    verdict = data.get("verdict") or data.get("status")
    if verdict is None and isinstance(data.get("passed"), bool):
        verdict = "passed" if data["passed"] else "failed"
    if not verdict:
        return []
    message = str(data.get("message") or data.get("summary") or "")
    message = re.sub(rf"^verification {re.escape(str(verdict))}:\s*", "", message, flags=re.IGNORECASE)
    lines = ["## Verification", "", f"**{verdict}**" + (f": {message}" if message else "")]
    if data.get("criteria"):
        lines += ["", f"Checked: {data['criteria']}" + (f", on {data['inputs']}." if data.get("inputs") else ".")]
    return lines + [""]


def _usage(kind: str, base: BaseModel, repo_id: Optional[str], folder: Optional[Path], peft: bool) -> list[str]:
    where = repo_id or "path/to/this/folder"
    lines = ["## Use", ""]
    if kind == "gguf":
        ggufs = sorted(p.name for p in folder.glob("*.gguf")) if folder else []
        file = ggufs[0] if ggufs else "model.gguf"
        lines += ["With llama.cpp:", "", "```sh"]
        lines += [f"llama-cli -hf {repo_id}" if repo_id else f"llama-cli -m {file}", "```", "",
                  "With Ollama:", "", "```sh"]
        modelfile = folder is not None and (folder / "Modelfile").exists()
        if repo_id:
            lines += [f"ollama run hf.co/{repo_id}"]
        if modelfile:  # the export's Modelfile carries the chat template and stop tokens
            lines += (["# or, in a download of this repo:"] if repo_id else []) + \
                ["ollama create my-model -f Modelfile", "ollama run my-model"]
        elif not repo_id:
            lines += [f"echo 'FROM ./{file}' > Modelfile", "ollama create my-model -f Modelfile", "ollama run my-model"]
        return lines + ["```", ""]
    lines += ["```python"]
    if kind == "merged" or not peft:
        lines += ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f'model = AutoModelForCausalLM.from_pretrained("{where}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{where}")']
    else:
        lines += ["from peft import PeftModel",
                  "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  f'base = AutoModelForCausalLM.from_pretrained("{base.hub_id or "BASE_MODEL"}")'
                  + ("" if base.hub_id else f"  # {base.name}"),
                  f'model = PeftModel.from_pretrained(base, "{where}")',
                  f'tokenizer = AutoTokenizer.from_pretrained("{where}")']
    return lines + ["```", ""]


def _base_license(folder: Optional[Path]) -> Optional[str]:
    """The ``license`` in the front matter of the base model's own README.md, if it is on this disk."""
    try:
        text = (folder / README).read_text(encoding="utf-8") if folder else ""
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1])
    except (yaml.YAMLError, IndexError):
        return None
    license_ = meta.get("license") if isinstance(meta, dict) else None
    return str(license_) if license_ else None


def _points(events: list[dict[str, Any]], type_: str, key: str) -> list[tuple[float, float]]:
    """(step, value) of one event type; a repeated step (a resumed run) keeps its newest value."""
    points: dict[float, float] = {}
    for e in events:
        if e.get("type") == type_ and _number(e.get(key)) and _number(e.get("step")):
            points[e["step"]] = float(e[key])
    return sorted(points.items())


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _code(base: BaseModel) -> str:
    return f"`{base.hub_id}`" if base.hub_id else base.name if base.name.startswith("the ") else f"`{base.name}`"


def _loss(value: Any) -> Optional[str]:
    return f"{value:.4f}" if _number(value) else None


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Optional[Path]) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
