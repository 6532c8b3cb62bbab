"""VerdictCard: an export's verification verdict, impossible to miss, and for a GGUF how to run it in Ollama.

It reads ``verification.json`` beside the export (studio.core.exports.read_verdict): PASSED on a
green card with the numbers (greedy tokens identical, top-1 agreement, perplexity change, max logit
difference), FAILED on a red one with every check that failed and what differed; an export made
without the check says that it was not verified. Beside a GGUF the Modelfile's ``ollama create``
command has a Copy button.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from studio.core.disk import human_bytes
from studio.core.exports import KIND_TITLES, MODELFILE, ExportInfo, gguf_file, ollama_command, verdict_figures
from studio.ui.theme import icon, repolish
from studio.ui.widgets.card import Banner, Card, muted, section_label


class VerdictCard(Card):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Verification")
        self.setObjectName("verdict_card")
        self.info: Optional[ExportInfo] = None
        self.verdict_label = self.title_label  # the card's title is the verdict, in its colour
        self.verdict_label.setObjectName("verdict_label")
        self.verdict_label.setProperty("role", "verdict-title")
        self.open_button = QPushButton("Open folder")
        self.open_button.setIcon(icon("folder"))
        self.open_button.setProperty("flat", True)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.add_header_widget(self.open_button)
        self.summary = muted("", role="muted")
        self.summary.setObjectName("verdict_summary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addWidget(self.summary)
        self.figures = QGridLayout()
        self.figures.setHorizontalSpacing(10)
        self.body.addLayout(self.figures)
        self.failures = QLabel()
        self.failures.setObjectName("verdict_failures")
        self.failures.setProperty("role", "verdict-failures")
        self.failures.setWordWrap(True)
        self.failures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addWidget(self.failures)
        self.runtime_note = Banner()
        self.body.addWidget(self.runtime_note)
        self.body.addWidget(self._build_ollama())
        self.criteria = muted("", role="faint")  # what PASSED means, last: the numbers and the command come first
        self.criteria.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.addWidget(self.criteria)
        self.hide()

    def _build_ollama(self) -> QWidget:
        self.ollama_box = box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 6, 0, 0)
        lay.setSpacing(6)
        lay.addWidget(section_label("Run it with Ollama"))
        row = QHBoxLayout()
        self.ollama_edit = QLineEdit()
        self.ollama_edit.setObjectName("ollama_command")
        self.ollama_edit.setReadOnly(True)
        self.ollama_edit.setProperty("mono", True)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("ollama_copy")
        self.copy_button.setIcon(icon("copy"))
        self.copy_button.clicked.connect(self._on_copy_clicked)
        row.addWidget(self.ollama_edit, 1)
        row.addWidget(self.copy_button)
        lay.addLayout(row)
        self.modelfile_label = muted("", role="faint")
        self.modelfile_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.modelfile_label)
        return box

    # ---- showing ------------------------------------------------------------------------
    def show_export(self, info: Optional[ExportInfo]) -> None:
        self.info = info
        if info is None:
            self.hide()
            return
        verdict = info.verdict
        state = "none" if verdict is None else "passed" if verdict.get("passed") else "failed"
        self.setProperty("verdict", state)
        self.verdict_label.setProperty("tone", state)
        self.verdict_label.setText({"passed": "✓  Verified: PASSED", "failed": "✗  VERIFICATION FAILED",
                                    "none": "Not verified"}[state])
        what = gguf_file(info.folder).name if info.kind == "gguf" and gguf_file(info.folder) else info.folder.name
        kind = KIND_TITLES.get(info.kind, info.kind)
        self.set_subtitle(f"{kind[:1].upper() + kind[1:]} · {what} · "
                          f"{human_bytes(info.size)} · {info.folder}")
        for w in (self, self.verdict_label):
            repolish(w)
        self._show_figures(verdict)
        if verdict is None:
            self.summary.setText("Exported without the check (--no-verify): nothing has compared it with the model "
                                 "it came from. Export again with verification on to know.")
            self.failures.hide()
            self.criteria.setText("")
            self.runtime_note.show_message("")
        else:
            failed = [c for c in verdict.get("checks") or [] if not c.get("passed")]
            self.summary.setText(f"{verdict.get('inputs') or ''}".strip().capitalize()
                                 + (f" · checked in {verdict['seconds']:.1f} s" if verdict.get("seconds") else ""))
            self.failures.setText("\n".join(f"✗ {c.get('name', '').replace('_', ' ')}: {c.get('detail', '')}"
                                            for c in failed) + ("\nThe export was kept so it can be inspected; do "
                                                                "not ship it as it is." if failed else ""))
            self.failures.setVisible(bool(failed))
            self.criteria.setText(f"Passes when: {verdict['criteria']}. Details: {info.folder / 'verification.json'}"
                                  if verdict.get("criteria") else str(info.folder / "verification.json"))
            self.runtime_note.show_message(verdict.get("runtime_note") or "", "warn")
        self._show_ollama(info)
        self.show()

    def _show_figures(self, verdict: Optional[dict[str, Any]]) -> None:
        while self.figures.count():
            item = self.figures.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        figures = verdict_figures(verdict) if verdict else []
        for col, fig in enumerate(f for f in figures if f.value not in ("ok", "FAILED")):
            self.figures.addWidget(_FigureTile(fig.title, fig.value, fig.passed, fig.detail), 0, col)
        self.figures.setColumnStretch(max(len(figures), 1), 1)

    def _show_ollama(self, info: ExportInfo) -> None:
        command = ollama_command(info.folder) if info.kind == "gguf" else None
        self.ollama_box.setVisible(command is not None)
        if command is None:
            return
        self.copy_button.setText("Copy")
        self.ollama_edit.setText(command)
        self.ollama_edit.setCursorPosition(0)
        self.modelfile_label.setText(f"{info.folder / MODELFILE}: the run's chat template in Ollama's syntax, its "
                                     "stop tokens and sampling settings; FROM names the .gguf file beside it.")

    def figure_texts(self) -> list[str]:
        """'Top-1 agreement: 100.0%' for each number shown (for tests)."""
        tiles = [self.figures.itemAt(i).widget() for i in range(self.figures.count())]
        return [f"{t.title}: {t.value}" for t in tiles if isinstance(t, _FigureTile)]

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.ollama_edit.text())
        self.copy_button.setText("Copied")

    def _on_open_clicked(self) -> None:
        if self.info is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.info.folder)))


class _FigureTile(QFrame):
    def __init__(self, title: str, value: str, passed: bool, detail: str):
        super().__init__()
        self.title, self.value = title, value
        self.setProperty("figure", "passed" if passed else "failed")
        self.setToolTip(detail)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(2)
        label = QLabel(title.upper())
        label.setProperty("role", "metric-label")
        number = QLabel(value)
        number.setProperty("role", "figure-value")
        number.setProperty("tone", "passed" if passed else "failed")
        lay.addWidget(label)
        lay.addWidget(number)
