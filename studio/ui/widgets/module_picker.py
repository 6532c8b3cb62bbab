"""ModulePicker: choose LoRA target modules, either every linear layer or a named subset.

The chips offered come from the chosen model's linear modules (``set_choices``); names typed in
the "Other" box cover anything else. The value is the method's "everything" keyword (LoRA's
``"all-linear"``, IA3's ``"auto"``) or a list of names, exactly what ``target_modules`` holds.
"""

from __future__ import annotations

from typing import Union

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QHBoxLayout, QLineEdit, QPushButton, QRadioButton, QVBoxLayout, QWidget

# Llama-style names, shown until the model's own module names are known.
DEFAULT_CHOICES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

Value = Union[str, list[str]]


class ModulePicker(QWidget):
    sig_value_edited = Signal(object)  # "all-linear" or list[str]

    def __init__(self, all_value: str = "all-linear", parent: QWidget | None = None):
        super().__init__(parent)
        self._all_value = all_value
        label = {"all-linear": "All linear layers", "auto": "The method's usual layers"}.get(all_value, all_value)
        self._all = QRadioButton(label)
        self._some = QRadioButton("Only these:")
        group = QButtonGroup(self)
        group.addButton(self._all)
        group.addButton(self._some)
        self._all.setChecked(True)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self._all)
        top.addWidget(self._some)
        top.addStretch(1)
        self._chips_box = QWidget()
        self._chips = QGridLayout(self._chips_box)
        self._chips.setContentsMargins(0, 0, 0, 0)
        self._chips.setHorizontalSpacing(6)
        self._chips.setVerticalSpacing(6)
        self._other = QLineEdit()
        self._other.setPlaceholderText("Other module names, comma separated")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        lay.addLayout(top)
        lay.addWidget(self._chips_box)
        lay.addWidget(self._other)
        self._buttons: dict[str, QPushButton] = {}
        self._choices: tuple[str, ...] = ()
        self.set_choices(DEFAULT_CHOICES)
        self._all.toggled.connect(self._on_mode_toggled)
        self._other.editingFinished.connect(self._emit)
        self._sync_enabled()

    def set_choices(self, names) -> None:
        """Offer these module names as chips (keeps the current selection where it can)."""
        names = tuple(dict.fromkeys(names)) or DEFAULT_CHOICES
        if names == self._choices:
            return
        selected = self._selected()
        for b in self._buttons.values():
            b.deleteLater()
        self._buttons.clear()
        self._choices = names
        for i, name in enumerate(names):
            b = QPushButton(name)
            b.setCheckable(True)
            b.setProperty("chip", True)
            b.setChecked(name in selected)
            b.toggled.connect(self._emit)
            self._chips.addWidget(b, i // 4, i % 4)
            self._buttons[name] = b
        self._sync_enabled()

    def value(self) -> Value:
        if self._all.isChecked():
            return self._all_value
        return self._selected()

    def set_value(self, value: Value) -> None:
        widgets = [self._all, self._some, self._other, *self._buttons.values()]
        for w in widgets:
            w.blockSignals(True)
        try:
            if isinstance(value, str):
                self._all.setChecked(True)
            else:
                names = list(value or [])
                self._some.setChecked(True)
                for name, b in self._buttons.items():
                    b.setChecked(name in names)
                self._other.setText(", ".join(n for n in names if n not in self._buttons))
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._sync_enabled()

    def _selected(self) -> list[str]:
        chosen = [n for n, b in self._buttons.items() if b.isChecked()]
        extra = [n.strip() for n in self._other.text().split(",") if n.strip()]
        return list(dict.fromkeys(chosen + extra))

    def _on_mode_toggled(self, _checked: bool) -> None:
        self._sync_enabled()
        if self._some.isChecked() and not self._selected():
            # A sensible start for a subset: the attention projections.
            for name in ("q_proj", "v_proj"):
                if name in self._buttons:
                    self._buttons[name].blockSignals(True)
                    self._buttons[name].setChecked(True)
                    self._buttons[name].blockSignals(False)
        self._emit()

    def _sync_enabled(self) -> None:
        some = self._some.isChecked()
        self._chips_box.setEnabled(some)
        self._other.setEnabled(some)

    def _emit(self, *_args) -> None:
        self.sig_value_edited.emit(self.value())
