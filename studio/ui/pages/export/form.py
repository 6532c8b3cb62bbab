"""ExportForm: what to export, from which weights, as which GGUF type, verified or not, with what it will cost.

The three kinds are choice tiles; one that this run cannot have is disabled and the note under
the tiles says why (a method that cannot merge; for GGUF, studio.core.gguf_support's reason naming
what is supported). Whether GGUF is offered, and each type's size and time
(studio.core.gguf_plan), are read from the run's files in a background job when the run or the
weights change, so the estimate is on screen before anything starts.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from studio.core.config import ConfigError
from studio.core.disk import human_bytes
from studio.core.exports import Source, export_sources
from studio.core.gguf_plan import QUANTS
from studio.core.runs import Run
from studio.ui.tasks import JobSlot, TaskState
from studio.ui.widgets.card import fmt_duration, muted, section_label

KINDS = (("adapter", "Adapter", "PEFT format, a few MB · loads on the base\nwith PeftModel.from_pretrained"),
         ("merged", "Merged model", "Full size, safetensors · loads anywhere with\nAutoModelForCausalLM, vLLM"),
         ("gguf", "GGUF", "One file for llama.cpp and Ollama,\nwith an Ollama Modelfile"))
DEFAULT_QUANT = "q4_k_m"
VERIFY_COST = {"adapter": "loads the base model twice (plain PEFT over a fresh base) and runs a few hundred tokens",
               "merged": "loads the saved model once more with plain transformers and runs a few hundred tokens",
               "gguf": "loads the file in llama.cpp and runs a few hundred tokens there and in transformers"}


def _gguf_facts(run: Run, source: Optional[Source], state: TaskState) -> dict[str, Any]:
    """(in a job) whether GGUF is offered for these weights, and every type's estimate when it is."""
    from studio.core.gguf_support import gguf_estimate, gguf_offer

    cfg = run.config()
    offer = gguf_offer(cfg, source.path if source else run.adapter_dir)
    estimates = {}
    if offer.ok:
        for name in QUANTS:
            if state.cancelled:
                break
            estimates[name] = gguf_estimate(cfg, offer, name, verify=True)
    return {"ok": offer.ok, "reason": offer.reason, "estimates": estimates}


class ExportForm(QWidget):
    sig_changed = Signal()  # the kind, weights or type changed: the page suggests a folder

    def __init__(self, run_combo: Optional[QWidget] = None, parent: QWidget | None = None):
        """``run_combo``: the page's run chooser, laid out beside the weights chooser."""
        super().__init__(parent)
        self.run: Optional[Run] = None
        self._info: Any = None  # the run's MethodInfo
        self._gguf: Optional[dict[str, Any]] = None  # _gguf_facts of the shown run and weights
        self._job = JobSlot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(10)

        top = QGridLayout()
        top.setHorizontalSpacing(12)
        top.setVerticalSpacing(6)
        if run_combo is not None:
            top.addWidget(section_label("Run"), 0, 0)
            top.addWidget(run_combo, 1, 0)
            top.setColumnStretch(0, 3)
        top.addWidget(section_label("From"), 0, 1)
        top.setColumnStretch(1, 2)
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("export_source_combo")
        self.source_combo.setToolTip("The final weights, or a checkpoint the run kept (the Runs page's Evaluate "
                                     "tab shows which one answers best).")
        self.source_combo.currentIndexChanged.connect(self._on_source_changed)
        top.addWidget(self.source_combo, 1, 1)
        lay.addLayout(top)

        lay.addWidget(section_label("What to export"))
        tiles = QHBoxLayout()
        tiles.setSpacing(10)
        self._group = QButtonGroup(self)
        self.tiles: dict[str, QPushButton] = {}
        for key, title, hint in KINDS:
            b = QPushButton(f"{title}\n{hint}")
            b.setProperty("choice", True)
            b.setCheckable(True)
            b.setObjectName(f"export_kind_{key}")
            b.setMinimumHeight(70)
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            self._group.addButton(b)
            self.tiles[key] = b
            tiles.addWidget(b, 1)
        self.tiles["adapter"].setChecked(True)
        for b in self.tiles.values():
            b.toggled.connect(self._on_kind_toggled)
        lay.addLayout(tiles)
        self.kind_note = muted("", role="faint")
        self.kind_note.setObjectName("export_kind_note")
        lay.addWidget(self.kind_note)

        self.gguf_box = QWidget()
        grid = QGridLayout(self.gguf_box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        grid.addWidget(section_label("GGUF type"), 0, 0)
        self.quant_combo = QComboBox()
        self.quant_combo.setObjectName("export_quant_combo")
        for q in QUANTS.values():
            self.quant_combo.addItem(q.label, q.name)
        self.quant_combo.setCurrentIndex(self.quant_combo.findData(DEFAULT_QUANT))
        self.quant_combo.currentIndexChanged.connect(self._on_quant_changed)
        grid.addWidget(self.quant_combo, 1, 0)
        self.estimate_label = muted("", role="muted")
        self.estimate_label.setObjectName("export_estimate")
        grid.addWidget(self.estimate_label, 1, 1)
        grid.setColumnStretch(1, 1)
        lay.addWidget(self.gguf_box)

        self.verify_box = QCheckBox("Verify the export: reload it the way its users will and compare it with the "
                                    "model it came from")
        self.verify_box.setObjectName("export_verify")
        self.verify_box.setChecked(True)
        self.verify_box.toggled.connect(self._on_quant_changed)
        lay.addWidget(self.verify_box)
        self.verify_note = muted("", role="faint")
        lay.addWidget(self.verify_note)
        self._update()

    # ---- the run ------------------------------------------------------------------------
    def set_run(self, run: Optional[Run], source: Optional[str] = None) -> Optional[str]:
        """Show ``run``'s weights (``source``: a folder to preselect); returns a config error, if any."""
        self.run = run
        self._info = None
        error = None
        if run is not None:
            try:
                self._info = type(run.config().method).info
            except ConfigError as e:
                error = str(e)
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        for s in export_sources(run) if run is not None else []:
            self.source_combo.addItem(s.title, s)
        self.source_combo.setEnabled(self.source_combo.count() > 1)
        self.source_combo.blockSignals(False)
        if source is not None:
            self.select_source(source)
        self._start_gguf_job()
        self._update()
        return error

    def select_source(self, path: str) -> bool:
        for i in range(self.source_combo.count()):
            if str(self.source_combo.itemData(i).path) == str(path):
                self.source_combo.setCurrentIndex(i)
                return True
        return False

    def source(self) -> Optional[Source]:
        return self.source_combo.currentData()

    def kind(self) -> str:
        return next((k for k, b in self.tiles.items() if b.isChecked()), "adapter")

    def set_kind(self, kind: str) -> None:
        self.tiles[kind].setChecked(True)

    def quant(self) -> str:
        return self.quant_combo.currentData()

    def set_quant(self, name: str) -> None:
        self.quant_combo.setCurrentIndex(self.quant_combo.findData(name))

    def verify(self) -> bool:
        return self.verify_box.isChecked()

    def gguf_ready(self) -> bool:
        """Whether GGUF is known to be offered for the shown weights (the background check has answered yes)."""
        return bool(self._gguf and self._gguf["ok"])

    def estimate(self) -> Any:
        return (self._gguf or {}).get("estimates", {}).get(self.quant())

    def problem(self) -> str:
        """Why the chosen export cannot start now ('' when it can)."""
        if self.run is None or self._info is None:
            return "Choose a finished run."
        kind = self.kind()
        if kind == "merged" and not self._info.mergeable:
            return self.kind_note.text()
        if kind == "gguf" and not self.gguf_ready():
            return self.kind_note.text() or "Checking whether this run can be written as GGUF…"
        return ""

    # ---- reactions ----------------------------------------------------------------------
    def _start_gguf_job(self) -> None:
        self._gguf = None
        run, source = self.run, self.source()
        if run is None or self._info is None:
            self._job.cancel()
            return
        self._job.start(lambda state: _gguf_facts(run, source, state), self._on_gguf_done, self._on_gguf_failed,
                        key=(run.path, source.path if source else None))

    def _on_gguf_done(self, facts: dict[str, Any]) -> None:
        self._gguf = facts
        for i in range(self.quant_combo.count()):
            q = QUANTS[self.quant_combo.itemData(i)]
            est = facts["estimates"].get(q.name)
            size = f"  ·  ≈ {human_bytes(est.size_bytes)}" if est is not None else ""
            self.quant_combo.setItemText(i, f"{q.label}  ·  {q.note}{size}")
        self._update()
        self.sig_changed.emit()

    def _on_gguf_failed(self, message: str) -> None:
        self._gguf = {"ok": False, "reason": f"the run's files could not be read ({message}).", "estimates": {}}
        self._update()

    def _on_source_changed(self, *_args: Any) -> None:
        self._start_gguf_job()
        self._update()
        self.sig_changed.emit()

    def _on_kind_toggled(self, checked: bool) -> None:
        if checked:
            self._update()
            self.sig_changed.emit()

    def _on_quant_changed(self, *_args: Any) -> None:
        self._update()
        self.sig_changed.emit()

    def _update(self) -> None:
        info, facts = self._info, self._gguf
        mergeable = bool(info and info.mergeable)
        self.tiles["merged"].setEnabled(mergeable)
        gguf_off = info is not None and (not mergeable or (facts is not None and not facts["ok"]))
        self.tiles["gguf"].setEnabled(info is not None and not gguf_off)
        if not self.tiles[self.kind()].isEnabled():
            self.tiles["adapter"].setChecked(True)
        kind = self.kind()
        notes = []
        if info is not None and not mergeable:
            notes.append(f"{info.title} cannot be merged: {info.merge_note}".strip())
        if info is not None and facts is not None and not facts["ok"] and mergeable:
            notes.append(f"GGUF is not offered for this run: {facts['reason']}")
        elif info is not None and not mergeable:
            notes.append("GGUF is not offered: a GGUF file holds one plain model, so the training must be merged "
                         "into the base, which soft prompts and prefixes cannot. Export the adapter instead.")
        if not notes and kind == "merged" and info is not None:
            notes.append(info.merge_note)
        self.kind_note.setText("\n".join(n for n in notes if n))
        self.kind_note.setVisible(bool(self.kind_note.text()))
        self.tiles["gguf"].setToolTip(notes[-1] if gguf_off and notes else "")
        self.gguf_box.setVisible(kind == "gguf")
        self._update_estimate()

    def _update_estimate(self) -> None:
        kind, verify = self.kind(), self.verify()
        est = self.estimate()
        if kind == "gguf":
            if self._gguf is None:
                self.estimate_label.setText("Estimating the size and time…")
            elif est is None:
                self.estimate_label.setText("")
            else:
                steps = {k: v for k, v in est.steps.items() if verify or k != "verify"}
                detail = ", ".join(f"{k} {_secs(v)}" for k, v in steps.items())
                inter = (f"; a {human_bytes(est.intermediate_bytes)} intermediate file while it is written"
                         if est.intermediate_bytes else "")
                self.estimate_label.setText(f"≈ {human_bytes(est.size_bytes)}, about "
                                            f"{fmt_duration(sum(steps.values()))} on this machine ({detail}){inter}")
        cost = VERIFY_COST.get(kind, "")
        if kind == "gguf" and est is not None:
            seconds = est.steps.get("verify", 0)
            cost += ": under a second here" if seconds < 1 else f": about {fmt_duration(seconds)} here"
        self.verify_note.setText(f"On by default. It {cost}. A failed check keeps the export, marked FAILED."
                                 if verify else "Not verified: nothing will check that the export answers like "
                                                "the model it came from.")


def _secs(seconds: float) -> str:
    return "<1s" if seconds < 1 else fmt_duration(seconds)
