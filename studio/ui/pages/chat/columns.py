"""The heads of the two answer columns: which side it is, how it is made, whether it answers.

The tuned column's head also picks its trained weights: the adapters the worker has loaded (a
switch is ``set_adapter``, milliseconds, the base stays loaded), the run's other checkpoints and
other runs on the same base (``load_adapter``), or a folder. The switch time is shown under it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from studio.core.chat_sources import Weights
from studio.ui.theme import repolish

SET, LOAD, FOLDER = "set", "load", "folder"


class SideHeader(QFrame):
    """The head of one answer column."""

    sig_answering_toggled = Signal(str, bool)  # side, whether it answers the next question

    def __init__(self, side: str, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.side = side
        self.setProperty("role", "chat-column-head")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 10, 14, 10)
        lay.setSpacing(3)
        top = QHBoxLayout()
        top.setSpacing(8)
        self.title = QLabel(title.upper())
        self.title.setProperty("role", "chat-column-title")
        self.title.setProperty("side", side)
        top.addWidget(self.title, 0, Qt.AlignmentFlag.AlignVCenter)
        self.extra = QHBoxLayout()  # the tuned side puts its adapter picker here
        top.addLayout(self.extra, 1)
        self.answers = QCheckBox("Answers")
        self.answers.setObjectName(f"{side}_answers")
        self.answers.setChecked(True)
        self.answers.setToolTip("Untick to leave this side out of the next questions (the sides answer one after "
                                "the other, so one side alone answers twice as fast).")
        self.answers.toggled.connect(lambda on: self.sig_answering_toggled.emit(self.side, on))
        top.addWidget(self.answers, 0, Qt.AlignmentFlag.AlignVCenter)
        lay.addLayout(top)
        self.note = QLabel()
        self.note.setProperty("role", "faint")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.available = True

    def set_status(self, available: bool, note: str) -> None:
        """Available or greyed out, with how it is made or why it cannot answer."""
        self.available = available
        self.note.setText(note)
        self.answers.setEnabled(available)
        self.setProperty("tone", "" if available else "off")
        repolish(self)
        repolish(self.title)

    def answering(self) -> bool:
        return self.available and self.answers.isChecked()


class AdapterPicker(QComboBox):
    """The tuned side's weights: loaded ones (switch), others over the same base (load), or a folder."""

    sig_adapter_requested = Signal(str, str, str)  # SET|LOAD|FOLDER, name, path

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("adapter_picker")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.setToolTip("The trained weights the tuned side uses. Loaded ones switch in milliseconds; others load "
                        "next to them over the same base, which stays loaded.")
        self._active: Optional[str] = None
        self.activated.connect(self._on_activated)

    def set_choices(self, loaded: list[str], active: Optional[str], candidates: list[tuple[str, Weights]],
                    can_load: bool = True) -> None:
        self.blockSignals(True)
        self.clear()
        self._active = active
        for name in loaded:
            self.addItem(name, (SET, name, ""))
        if can_load:
            if loaded:
                self.insertSeparator(self.count())
            for name, weights in candidates:
                self.addItem(f"Load {name}", (LOAD, name, str(weights.path)))
            self.addItem("Load from a folder…", (FOLDER, "", ""))
        if active is None:
            self.insertItem(0, "No trained weights", None)
            self.setCurrentIndex(0)
        else:
            self.setCurrentIndex(max(0, self.findText(active)))
        self.blockSignals(False)

    def choice_names(self) -> list[str]:
        return [self.itemText(i) for i in range(self.count()) if self.itemData(i)]

    def request(self, text: str) -> None:
        """Act as if the user picked the item labelled ``text``."""
        i = self.findText(text)
        if i >= 0:
            self.setCurrentIndex(i)
            self._on_activated(i)

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if not data:
            return
        action, name, path = data
        if action == SET and name == self._active:
            return
        # Show the active weights until the worker says it switched (``switched``), so the head never lies.
        self.blockSignals(True)
        self.setCurrentIndex(max(0, self.findText(self._active)) if self._active else 0)
        self.blockSignals(False)
        self.sig_adapter_requested.emit(action, name, path)


def folder_adapter_name(folder: str, taken: list[str]) -> str:
    """A name for weights loaded from a folder: the folder's name, made unique."""
    base = Path(folder).name or "adapter"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name
