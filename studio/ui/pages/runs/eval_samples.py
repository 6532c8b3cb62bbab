"""SamplesView: the held-out prompts answered by the base and by a chosen checkpoint, side by side.

Each prompt is one row: the prompt as the model read it (the chat template's special tokens
dimmed), the reference answer, the base model's answer and the chosen weights' answer, each answer
marked exact (green tick) or not (red cross) with its own scores. A combo picks which weights
stand beside the base when the evaluation answered with several; a filter keeps only the prompts
the chosen weights got wrong.
"""

from __future__ import annotations

import html
import re
from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from studio.ui.pages.runs.eval_table import label_title
from studio.ui.theme import COLORS, repolish
from studio.ui.widgets.card import muted, section_label

MAX_SHOWN = 100  # the worker answers at most 100 prompts by default
MAX_CHARS = 600  # a longer answer is cut (the tooltip has all of it)
STRETCH = (0, 5, 2, 4, 4)  # #, prompt, reference, base, chosen
_SPECIAL = re.compile(r"(<\|[^|<>]{1,40}\|>|</?s>|\[/?INST\]|<start_of_turn>|<end_of_turn>|<bos>|<eos>)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def readable(text: str) -> str:
    """Control characters (a base model's noise) shown as U+FFFD; very long text cut."""
    text = _CONTROL.sub("\ufffd", text)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"


def prompt_html(prompt: str) -> str:
    """The prompt as a person reads it: the chat template's special tokens left out, each turn on its own line
    with its role (user, system...) in small faint capitals, the empty answer turn at the end dropped. The
    exact text the model read is the cell's tooltip."""
    turns = [t.strip() for t in _SPECIAL.split(readable(prompt)) if t.strip() and not _SPECIAL.fullmatch(t.strip())]
    lines = []
    for turn in turns:
        m = _ROLE.match(turn)
        role, text = (m.group(1), turn[m.end():].strip()) if m else ("", turn)
        if role and not text:
            continue  # "assistant": the turn the model answers
        body = html.escape(text).replace("\n", "<br>")
        tag = (f"<span style='color:{COLORS['faint']}; font-size:10px; font-weight:700'>{role.upper()}</span>&nbsp; "
               if role else "")
        lines.append(tag + body)
    return "<br>".join(lines) or html.escape(readable(prompt))


_ROLE = re.compile(r"^(system|user|assistant|model|human|gpt|tool)\b[:]?\s*", re.IGNORECASE)


class SamplesView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._samples: list[dict[str, Any]] = []
        self._labels: list[str] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        titles.addWidget(section_label("Answers on held-out prompts"))
        self.summary = muted("", wrap=True, role="faint")
        titles.addWidget(self.summary)
        head.addLayout(titles)
        head.addStretch(1)
        self.chosen_combo = QComboBox()
        self.chosen_combo.setObjectName("eval_chosen_combo")
        self.chosen_combo.setMinimumWidth(150)
        self.chosen_combo.setToolTip("Whose answers stand beside the base model's")
        self.chosen_combo.currentIndexChanged.connect(self._on_choice_changed)
        head.addWidget(self.chosen_combo)
        self.filter_combo = QComboBox()
        self.filter_combo.setObjectName("eval_filter_combo")
        self.filter_combo.addItems(["All prompts", "Wrong answers only"])
        self.filter_combo.currentIndexChanged.connect(self._on_choice_changed)
        head.addWidget(self.filter_combo)
        lay.addLayout(head)
        self.rows_box = QVBoxLayout()
        self.rows_box.setSpacing(0)
        lay.addLayout(self.rows_box)
        self.empty = muted("", role="muted")
        lay.addWidget(self.empty)
        self._rows: list[QWidget] = []

    # ---- public -------------------------------------------------------------------------
    def set_samples(self, samples: list[dict[str, Any]], generated: list[str], best: Optional[str]) -> None:
        """The evaluation's samples; ``generated``: the labels that answered (base first)."""
        self._samples = list(samples)[:MAX_SHOWN]
        self._labels = [g for g in generated if g != "base"]
        self.chosen_combo.blockSignals(True)
        self.chosen_combo.clear()
        for label in self._labels:
            self.chosen_combo.addItem("Base vs " + label_title(label).lower() + (" (best)" if label == best else ""),
                                      label)
        pick = self._labels.index(best) if best in self._labels else len(self._labels) - 1
        self.chosen_combo.setCurrentIndex(max(pick, 0))
        self.chosen_combo.setEnabled(len(self._labels) > 1)
        self.chosen_combo.blockSignals(False)
        self._rebuild()

    def choose(self, label: str) -> None:
        """Show ``label``'s answers beside the base (when it answered)."""
        i = self.chosen_combo.findData(label)
        if i >= 0:
            self.chosen_combo.setCurrentIndex(i)

    def chosen(self) -> Optional[str]:
        return self.chosen_combo.currentData()

    def shown_rows(self) -> int:
        return len(self._rows)

    def row_texts(self, i: int) -> list[str]:
        """What row ``i`` shows, cell by cell (for tests): #, prompt, reference, base answer, chosen answer."""
        return [w.property("plain") or "" for w in self._rows[i].findChildren(QLabel) if w.property("cell")]

    # ---- building -----------------------------------------------------------------------
    def _on_choice_changed(self, *_args: Any) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        for row in self._rows:
            row.setParent(None)
            row.deleteLater()
        self._rows = []
        chosen = self.chosen()
        samples = self._samples
        if chosen and self.filter_combo.currentIndex() == 1:
            samples = [s for s in samples if not _exact(s, chosen)]
        if self._samples and chosen:
            right = sum(_exact(s, chosen) for s in self._samples if s.get("reference") is not None)
            scored = sum(1 for s in self._samples if s.get("reference") is not None)
            base = sum(_exact(s, "base") for s in self._samples if s.get("reference") is not None)
            self.summary.setText(f"exact: base {base}/{scored}, {label_title(chosen).lower()} {right}/{scored}"
                                 if scored else f"{len(self._samples)} prompts without a reference")
        else:
            self.summary.setText("")
        if not self._samples:
            self.empty.setText("No answers yet: the evaluation has the base and the best checkpoint answer the "
                               "held-out prompts after the losses.")
        elif not samples:
            self.empty.setText("Every answer is exact.")
        else:
            self.empty.setText("")
        self.empty.setVisible(bool(self.empty.text()))
        if not samples:
            return
        header = _Row(["#", "Prompt", "Reference", "Base model", label_title(chosen or "")], header=True)
        self.rows_box.addWidget(header)
        self._rows.append(header)
        for n, sample in enumerate(samples):
            row = _SampleRow(sample, chosen or "", alternate=n % 2 == 1)
            self.rows_box.addWidget(row)
            self._rows.append(row)


def _exact(sample: dict[str, Any], label: str) -> bool:
    scores = (sample.get("scores") or {}).get(label) or {}
    return scores.get("exact_match") == 100.0


class _Row(QFrame):
    """A line of the side-by-side list: the cells share the columns' stretch factors."""

    def __init__(self, texts: list[str], header: bool = False, alternate: bool = False):
        super().__init__()
        self.setProperty("evalrow", "header" if header else "alt" if alternate else "plain")
        self.cells = QHBoxLayout(self)
        self.cells.setContentsMargins(10, 8 if not header else 6, 10, 8 if not header else 6)
        self.cells.setSpacing(14)
        if header:
            for text, stretch in zip(texts, STRETCH):
                label = section_label(text)
                label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
                self._add(label, stretch)
        repolish(self)

    def _add(self, widget: QWidget, stretch: int) -> None:
        if stretch == 0:
            widget.setFixedWidth(24)
        self.cells.addWidget(widget, stretch, Qt.AlignmentFlag.AlignTop)


class _SampleRow(_Row):
    def __init__(self, sample: dict[str, Any], chosen: str, alternate: bool):
        super().__init__([], alternate=alternate)
        reference = sample.get("reference")
        self._add(_cell(str(sample.get("index", 0) + 1), role="faint"), 0)
        prompt = _cell(sample.get("prompt", ""), rich=True)
        self._add(prompt, STRETCH[1])
        self._add(_cell(reference if reference is not None else "—", mono=True), STRETCH[2])
        answers = sample.get("answers") or {}
        scores = sample.get("scores") or {}
        for label, stretch in (("base", STRETCH[3]), (chosen, STRETCH[4])):
            self._add(_answer(answers.get(label), scores.get(label), reference is not None), stretch)


def _cell(text: str, role: str = "", mono: bool = False, rich: bool = False) -> QLabel:
    label = QLabel()
    label.setProperty("cell", True)
    label.setProperty("plain", text)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setText(prompt_html(text))
        label.setToolTip("The prompt exactly as the model read it:\n\n" + readable(text))
    else:
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setText(readable(text))
    if len(text) > MAX_CHARS and not rich:
        label.setToolTip(text[:4000])
    if role:
        label.setProperty("role", role)
    if mono:
        label.setProperty("mono", True)
    return label


def _answer(text: Optional[str], scores: Optional[dict[str, float]], has_reference: bool) -> QWidget:
    """An answer with its mark (exact or not) and its scores underneath."""
    box = QWidget()
    box.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(2)
    if text is None:
        lay.addWidget(_cell("(not answered)", role="faint"))
        return box
    answer = _cell(text if text.strip() else "(empty answer)", mono=True)
    exact = bool(scores) and scores.get("exact_match") == 100.0
    if has_reference and scores:
        answer.setProperty("mark", "exact" if exact else "wrong")
        line = "✓ exact" if exact else "✗ " + "  ·  ".join(
            f"{name} {scores[key]:.0f}" for key, name in (("rouge_l", "ROUGE-L"), ("chrf", "chrF")) if key in scores)
        note = QLabel(line)
        note.setProperty("role", "eval-ok" if exact else "eval-bad")
        lay.addWidget(answer)
        lay.addWidget(note)
    else:
        lay.addWidget(answer)
    return box
