"""A run's exports as the Export page and the CLI see them: what can be exported, where it went, what it passed.

No Qt, no torch. ``export_sources(run)`` lists the trained weights an export can start from (the
final ones and every complete checkpoint: what ``--worker export --from`` takes); ``default_out``
is the folder `studio export` would pick; ``list_exports(run)`` reads the finished exports under
``RUN_DIR/exports`` with their kind and verification verdict (``verification.json``, written by
studio.worker.verify); ``verdict_figures`` turns a verdict's checks into the few numbers a person
reads first; ``ollama_command`` is the command that makes an Ollama model of a GGUF folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from studio.core.runs import Run

VERDICT_FILE = "verification.json"  # the name studio.worker.verify writes
MODELFILE = "Modelfile"
KIND_TITLES = {"adapter": "adapter", "merged": "merged model", "gguf": "GGUF"}


@dataclass(frozen=True)
class Source:
    """Trained weights to export from: ``label`` final or step-N (the evaluation table's labels)."""

    label: str
    step: Optional[int]
    path: Path

    @property
    def title(self) -> str:
        if self.label == "final":
            return "Final weights" + (f" (step {self.step})" if self.step else "")
        return f"Checkpoint at step {self.step}"


def export_sources(run: Run) -> list[Source]:
    """The final weights (when saved), then every complete checkpoint, newest first."""
    from studio.core.checkpoints import list_checkpoints

    out = []
    if run.adapter_dir.is_dir() and any(run.adapter_dir.iterdir()):
        out.append(Source("final", _final_step(run), run.adapter_dir))
    out += [Source(f"step-{c.step}", c.step, c.path) for c in reversed(list_checkpoints(run.path))]
    return out


def _final_step(run: Run) -> Optional[int]:
    try:
        return int(json.loads((run.adapter_dir / "training_state.json").read_text(encoding="utf-8"))["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def default_out(run: Run, kind: str, quant: str = "", source: Optional[Source] = None) -> Path:
    """exports/<kind> (gguf-<quant> for GGUF; -step-N from a checkpoint), numbered so it is never an earlier export."""
    name = f"gguf-{quant}" if kind == "gguf" and quant else kind
    if source is not None and source.label != "final":
        name += f"-{source.label}"
    base = run.exports_dir / name
    out, n = base, 1
    while out.exists() and any(out.iterdir()):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


@dataclass(frozen=True)
class ExportInfo:
    folder: Path
    kind: str  # adapter, merged, gguf
    size: int  # bytes of every file in it
    verdict: Optional[dict[str, Any]]  # verification.json, None when not verified

    @property
    def verdict_text(self) -> str:
        if self.verdict is None:
            return "not verified"
        return "verified: PASSED" if self.verdict.get("passed") else "verification FAILED"


def list_exports(run: Run) -> list[ExportInfo]:
    """The finished exports of ``run`` (folders under exports/, not the ``.tmp`` of one in progress), newest first."""
    from studio.core.hub_upload import export_kind

    if not run.exports_dir.is_dir():
        return []
    out = []
    for folder in run.exports_dir.iterdir():
        if not folder.is_dir() or folder.name.endswith(".tmp"):
            continue
        files = [f for f in folder.rglob("*") if f.is_file()]
        if not files:
            continue
        size = sum(f.stat().st_size for f in files)
        out.append((max(f.stat().st_mtime for f in files),
                    ExportInfo(folder, export_kind(folder), size, read_verdict(folder))))
    return [info for _, info in sorted(out, key=lambda pair: pair[0], reverse=True)]


def read_verdict(folder: Path | str) -> Optional[dict[str, Any]]:
    """``folder``'s verification.json, or None when it has none (or it cannot be read)."""
    try:
        data = json.loads((Path(folder) / VERDICT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("checks"), list) else None


@dataclass(frozen=True)
class Figure:
    """One number of a verdict: ``title`` ("Top-1 agreement"), ``value`` ("98.6%"), whether its check passed."""

    name: str
    title: str
    value: str
    passed: bool
    detail: str


def verdict_figures(verdict: dict[str, Any]) -> list[Figure]:
    """The numbers of a verdict's checks, in the order a person reads them: greedy tokens, top-1 agreement,
    perplexity change, max logit difference, tokenizer; then the checks that have no number (loads)."""
    figures = []
    rest = []
    for check in verdict.get("checks") or []:
        name, passed, detail = check.get("name", ""), bool(check.get("passed")), str(check.get("detail", ""))
        value = _figure_value(check)
        if value is None:
            rest.append(Figure(name, _CHECK_TITLES.get(name, name.replace("_", " ").capitalize()),
                               "ok" if passed else "FAILED", passed, detail))
        else:
            figures.append(Figure(name, _CHECK_TITLES.get(name, name), value, passed, detail))
    figures.sort(key=lambda f: _ORDER.index(f.name) if f.name in _ORDER else len(_ORDER))
    return figures + rest


_ORDER = ("greedy", "top1_agreement", "perplexity", "logits", "tokenizer")
_CHECK_TITLES = {"greedy": "Greedy tokens identical", "top1_agreement": "Top-1 agreement",
                 "perplexity": "Perplexity change", "logits": "Max logit difference", "tokenizer": "Tokenizer",
                 "loads": "Loads"}


def _figure_value(check: dict[str, Any]) -> Optional[str]:
    name = check.get("name")
    if name == "greedy" and isinstance(check.get("prompts"), int):
        return f"{check.get('equal_prompts', 0)}/{check['prompts']} prompts"
    if name == "greedy":
        m = re.search(r"(\d+)/(\d+)", str(check.get("detail", "")))
        return f"{m.group(1)}/{m.group(2)} prompts" if m else None
    if name == "top1_agreement" and isinstance(check.get("value"), (int, float)):
        return f"{check['value']:.1%}"
    if name == "perplexity" and isinstance(check.get("change"), (int, float)) and check["change"] == check["change"]:
        return f"{check['change']:+.2%}"
    if name == "logits" and isinstance(check.get("max_abs_diff"), (int, float)):
        return f"{check['max_abs_diff']:.1e}"
    if name == "tokenizer":
        return "same token ids" if check.get("passed") else "different ids"
    return None


def gguf_file(folder: Path | str) -> Optional[Path]:
    return next(iter(sorted(Path(folder).glob("*.gguf"))), None)


def ollama_model_name(folder: Path | str) -> Optional[str]:
    """The name the folder's Modelfile suggests (its ``ollama create NAME`` comment), or None without a Modelfile."""
    try:
        text = (Path(folder) / MODELFILE).read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"ollama create (\S+) -f", text)
    return m.group(1) if m else "studio-model"


def ollama_command(folder: Path | str) -> Optional[str]:
    """``cd FOLDER && ollama create NAME -f Modelfile`` (its FROM line names the .gguf file beside it)."""
    name = ollama_model_name(folder)
    if name is None:
        return None
    return f"cd {_shell_quote(str(folder))} && ollama create {name} -f {MODELFILE}"


def _shell_quote(text: str) -> str:
    return text if re.fullmatch(r"[\w@%+=:,./-]+", text) else "'" + text.replace("'", "'\"'\"'") + "'"


def default_repo_name(run_name: str, kind: str) -> str:
    """A Hub repo name from the run's name: secret-codes, secret-codes-merged, secret-codes-GGUF."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-._") or "studio-model"
    return name + {"adapter": "", "merged": "-merged", "gguf": "-GGUF"}.get(kind, "")
