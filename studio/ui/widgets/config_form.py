"""ConfigForm: a form generated from the pydantic models, bound two-way to the ConfigModel.

One definition per knob: the field's ``title`` is the label, its ``description`` the tooltip,
``ge``/``gt``/``le``/``lt`` the spin range, a ``Literal`` becomes a combo box (values labelled by the field's
``json_schema_extra["choice_labels"]``, else by a shared table), ``bool`` a check
box, a float with ``json_schema_extra["percent"]`` a spin box in percent, and ``list[str] | "all-linear"``
the module picker. Edits go through ``ConfigModel.set``; a
rejected value stays visible with the reason under it, and the config keeps its last valid value.
When the section's class changes (another method was chosen) the form rebuilds itself.

``BoundField`` is one such editor, bound the same way, for a page that lays its fields out itself
(the Data page's cards).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Callable, Iterable, Literal, Optional

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSizePolicy, QSpinBox, QWidget)

from studio.ui.config_model import ConfigModel
from studio.ui.widgets.module_picker import ModulePicker
from studio.ui.widgets.wheel_guard import guard_fields

INT_MAX = 2_147_483_647
LABEL_WIDTH = 160  # the same in every form, so stacked forms line up (and two columns fit a 1280 px window)


class FloatSpinBox(QDoubleSpinBox):
    """A spin box that shows 2e-4 as 2e-4 (not 0.00), and steps in proportion to the value."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D401
        from PySide6.QtGui import QValidator

        t = text.strip().replace(",", ".")
        if not t or t in ("-", ".", "e", "-.") or t.endswith(("e", "e-", "e+")):
            return QValidator.State.Intermediate, text, pos
        try:
            float(t)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos

    def set_bounds(self, lo: Optional[float], hi: Optional[float], lo_open: bool, hi_open: bool) -> None:
        """The field's valid range. Typing outside it is allowed, so the field keeps showing what was typed
        beside the form's message (clamping showed -1 as "0" next to "must be greater than 0");
        the arrows and the wheel stay inside it."""
        self._bounds = (lo, hi, lo_open, hi_open)
        self.setRange(-1e12, 1e12)

    def stepBy(self, steps: int) -> None:  # noqa: N802
        v = self.value()
        step = 10 ** math.floor(math.log10(abs(v))) if v else max(self.singleStep(), 1e-6)
        new = v + steps * step
        lo, hi, lo_open, hi_open = getattr(self, "_bounds", (None, None, False, False))
        if lo is not None and (new < lo or (lo_open and new <= lo)):
            new = v if lo_open else lo
        if hi is not None and (new > hi or (hi_open and new >= hi)):
            new = v if hi_open else hi
        self.setValue(new)


# ---- one editor per field -------------------------------------------------------------------

class FieldEditor:
    """Pairs a widget with how to show a value in it and how it reports edits."""

    def __init__(self, widget: QWidget, show: Callable[[Any], None], connect: Callable[[Callable[[Any], None]], None]):
        self.widget = widget
        self.show = show
        self.connect = connect


def _bounds(info: FieldInfo) -> tuple[Optional[float], Optional[float], bool, bool]:
    lo = hi = None
    lo_open = hi_open = False
    for m in info.metadata:
        if getattr(m, "ge", None) is not None:
            lo = m.ge
        if getattr(m, "gt", None) is not None:
            lo, lo_open = m.gt, True
        if getattr(m, "le", None) is not None:
            hi = m.le
        if getattr(m, "lt", None) is not None:
            hi, hi_open = m.lt, True
    return lo, hi, lo_open, hi_open


def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(ann)) == 2:
            return args[0], True
    return ann, False


def _is_module_list(ann: Any) -> bool:
    if typing.get_origin(ann) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(ann)
    return any(typing.get_origin(a) is list for a in args) and any(typing.get_origin(a) is Literal for a in args)


def make_editor(info: FieldInfo, path_kind: str = "", text: str = "") -> Optional[FieldEditor]:
    """The editor for one field, or None for types the form does not edit (maps, nested models).

    ``text``: a check box's own text (a form's check boxes have their label beside them instead)."""
    ann, optional = _unwrap_optional(info.annotation)
    if _is_module_list(ann):
        keyword = next(typing.get_args(a)[0] for a in typing.get_args(ann) if typing.get_origin(a) is Literal)
        picker = ModulePicker(all_value=keyword)
        return FieldEditor(picker, picker.set_value, picker.sig_value_edited.connect)
    if typing.get_origin(ann) is Literal:
        values = list(typing.get_args(ann))
        own = _field_choice_labels(info)
        combo = QComboBox()
        for v in values:
            combo.addItem(own.get(v) or _choice_label(v), v)

        def show_choice(v: Any) -> None:
            i = combo.findData(v)
            if i >= 0:
                combo.setCurrentIndex(i)

        return FieldEditor(combo, show_choice,
                           lambda cb: combo.currentIndexChanged.connect(lambda i: cb(combo.itemData(i))))
    if ann is bool:
        box = QCheckBox(text)
        return FieldEditor(box, lambda v: box.setChecked(bool(v)), lambda cb: box.toggled.connect(cb))
    if ann is int:
        spin = QSpinBox()
        lo, hi, lo_open, hi_open = _bounds(info)
        lo_i = int(lo) + (1 if lo_open else 0) if lo is not None else -INT_MAX
        hi_i = int(hi) - (1 if hi_open else 0) if hi is not None else INT_MAX
        lo_i, hi_i = max(lo_i, -INT_MAX + 1), min(hi_i, INT_MAX)  # a QSpinBox holds a signed 32-bit int
        if optional:  # the lowest value stands for "not set"
            lo_i -= 1
            spin.setSpecialValueText("—")
        spin.setRange(lo_i, hi_i)
        spin.setAccelerated(True)
        spin.setKeyboardTracking(False)

        def show_int(v: Any) -> None:
            spin.setValue(lo_i if v is None else int(v))

        def connect_int(cb):
            spin.valueChanged.connect(lambda v: cb(None if optional and v == lo_i else v))

        return FieldEditor(spin, show_int, connect_int)
    if ann is float and _field_extra(info).get("percent"):
        return _percent_editor(info)
    if ann is float:
        spin = FloatSpinBox()
        spin.set_bounds(*_bounds(info))
        spin.setSingleStep(0.01)
        spin.setKeyboardTracking(False)
        return FieldEditor(spin, lambda v: spin.setValue(float(v)), lambda cb: spin.valueChanged.connect(cb))
    if ann is str:
        edit = QLineEdit()
        if info.default == "" and info.description:
            edit.setPlaceholderText(info.description.split(". ")[0].rstrip("."))
        if path_kind:
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(6)
            lay.addWidget(edit, 1)
            browse = QPushButton("Browse…")
            browse.setProperty("flat", True)
            lay.addWidget(browse)

            def pick() -> None:
                folder = QFileDialog.getExistingDirectory(row, "Choose a folder", edit.text())
                if folder:
                    edit.setText(folder)
                    edit.editingFinished.emit()

            browse.clicked.connect(pick)
            return FieldEditor(row, lambda v: _set_text(edit, v), lambda cb: edit.editingFinished.connect(lambda: cb(edit.text())))
        return FieldEditor(edit, lambda v: _set_text(edit, v), lambda cb: edit.editingFinished.connect(lambda: cb(edit.text())))
    return None


def _set_text(edit: QLineEdit, v: Any) -> None:
    if edit.text() != ("" if v is None else str(v)):
        edit.setText("" if v is None else str(v))


def _percent_editor(info: FieldInfo) -> FieldEditor:
    """A share (0..1) shown and typed in percent, with one decimal."""
    spin = QDoubleSpinBox()
    lo, hi, _lo_open, _hi_open = _bounds(info)
    spin.setRange(100 * (lo if lo is not None else 0.0), 100 * (hi if hi is not None else 1.0))
    spin.setDecimals(1)
    spin.setSuffix(" %")
    spin.setKeyboardTracking(False)
    return FieldEditor(spin, lambda v: spin.setValue(float(v) * 100),
                       lambda cb: spin.valueChanged.connect(lambda v: cb(round(v / 100, 4))))


def _field_extra(info: FieldInfo) -> dict:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _field_choice_labels(info: FieldInfo) -> dict:
    """A field's own labels for its values: ``Field(json_schema_extra={"choice_labels": {"fp32": "fp32 (PEFT)"}})``."""
    labels = _field_extra(info).get("choice_labels")
    return labels if isinstance(labels, dict) else {}


def _choice_label(v: Any) -> str:
    labels = {"auto": "Auto", "on": "On", "off": "Off", "cpu": "CPU", "cuda": "CUDA (GPU)", "adamw": "AdamW",
              "adamw_8bit": "AdamW 8-bit", "paged_adamw_8bit": "Paged AdamW 8-bit", "sgd": "SGD",
              "constant_with_warmup": "Constant with warm-up", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32",
              "nf4": "NF4", "fp4": "FP4", "sdpa": "SDPA", "eager": "Eager", "flash_attention_2": "FlashAttention 2",
              "fastest": "Fastest", "memory_saver": "Memory saver"}
    if isinstance(v, str):
        return labels.get(v, v.replace("_", " ").capitalize())
    return f"{v}-bit" if isinstance(v, int) else str(v)


def _title(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def show_quietly(editor: FieldEditor, value: Any) -> None:
    """Show a value from the config without the editor reporting it back as an edit."""
    widgets = [editor.widget, *editor.widget.findChildren(QWidget)]
    blocked = [w.blockSignals(True) for w in widgets]
    try:
        editor.show(value)
    finally:
        for w, was in zip(widgets, blocked):
            w.blockSignals(was)


def show_error(editor: QWidget, label: QLabel, message: str) -> None:
    """The reason under a field whose last edit was rejected ("" hides it), and the field marked invalid."""
    label.setText(message)
    label.setVisible(bool(message))
    editor.setProperty("invalid", bool(message))
    editor.style().unpolish(editor)
    editor.style().polish(editor)


def _label(text: str, tip: str, role: str = "field-label") -> QLabel:
    label = QLabel(text)
    label.setProperty("role", role)
    label.setToolTip(tip)
    return label


def _error_label() -> QLabel:
    error = QLabel()
    error.setProperty("role", "field-error")
    error.setWordWrap(True)
    error.hide()
    return error


# ---- one field, placed by a page ---------------------------------------------------------------

class BoundField(QObject):
    """One field's generated editor bound to the ConfigModel by dotted path, for a page that lays it out.

    ``widget`` edits the field (a check box shows the field's title as its text), ``label`` names it
    and ``error`` says why the last edit was rejected (hidden while there is nothing to say). It
    lives as long as its editor does. ``on_edit`` takes the edits instead of ``commit``, for a page
    whose choice writes more than this one field (the Data page's "Custom…" template also writes its text).
    """

    def __init__(self, config_model: ConfigModel, path: str, on_edit: Optional[Callable[[Any], Any]] = None):
        super().__init__()
        section, _, name = path.rpartition(".")
        owner = config_model.get(section) if section else config_model.config
        info = type(owner).model_fields[name]
        self.title = _title(name, info)
        editor = make_editor(info, text=self.title)
        if editor is None:
            raise TypeError(f"{path}: the form has no editor for {info.annotation}")
        self.setParent(editor.widget)
        self._model = config_model
        self._path = path
        self._name = name
        self._section = section
        self._editor = editor
        self.widget = editor.widget
        self.widget.setToolTip(info.description or "")
        self.widget.setObjectName(f"field_{path.replace('.', '_')}")
        self.label = _label(self.title, info.description or "")
        self.error = _error_label()
        editor.show(getattr(owner, name))
        editor.connect(on_edit or self.commit)
        config_model.sig_config_changed.connect(self._on_config_changed)
        config_model.sig_field_error.connect(self._on_model_field_error)

    def commit(self, value: Any) -> bool:
        """Write a value into the config (what an edit does); False, with the reason shown, if rejected."""
        return self._model.set(self._path, value)

    def _on_config_changed(self, _config) -> None:
        if self._path not in self._model.errors():  # keep showing what the user typed next to the reason
            self.show_config_value()

    def show_config_value(self) -> None:
        """Show the config's value again (after an ``on_edit`` that did not write the edit)."""
        owner = self._model.get(self._section) if self._section else self._model.config
        show_quietly(self._editor, getattr(owner, self._name))

    def _on_model_field_error(self, path: str, message: str) -> None:
        if path == self._path:
            show_error(self.widget, self.error, message)


# ---- the form --------------------------------------------------------------------------------

class ConfigForm(QWidget):
    """Fields of one config section (``training``, ``method``, or ``""`` for the top level)."""

    sig_rebuilt = Signal()

    def __init__(self, config_model: ConfigModel, section: str, fields: Optional[Iterable[str]] = None,
                 exclude: Iterable[str] = (), columns: int = 1, path_fields: Iterable[str] = (),
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._section = section
        self._only = list(fields) if fields is not None else None
        self._exclude = set(exclude) | {"name"} if section == "method" else set(exclude)
        self._columns = max(1, columns)
        self._path_fields = set(path_fields)
        self._editors: dict[str, FieldEditor] = {}
        self._errors: dict[str, QLabel] = {}
        self._labels: dict[str, QLabel] = {}
        self._class: Optional[type] = None
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(14)
        self._grid.setVerticalSpacing(4)
        self._build()
        config_model.sig_config_changed.connect(self._on_config_changed)
        config_model.sig_field_error.connect(self._on_model_field_error)

    # -- public, for tests and for pages that want to place or tweak editors
    def field_names(self) -> list[str]:
        return list(self._editors)

    def editor(self, name: str) -> QWidget:
        return self._editors[name].widget

    def error_text(self, name: str) -> str:
        label = self._errors.get(name)
        return label.text() if label is not None and not label.isHidden() else ""

    def _path(self, name: str) -> str:
        return f"{self._section}.{name}" if self._section else name

    def _section_object(self) -> BaseModel:
        return self._model.get(self._section) if self._section else self._model.config

    def _wanted_fields(self, cls: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
        names = self._only if self._only is not None else list(cls.model_fields)
        out = []
        for name in names:
            info = cls.model_fields.get(name)
            if info is None or name in self._exclude:
                continue
            ann, _ = _unwrap_optional(info.annotation)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                continue
            out.append((name, info))
        return out

    def _build(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._editors.clear()
        self._errors.clear()
        self._labels.clear()
        obj = self._section_object()
        self._class = type(obj)
        fields = [(n, i, make_editor(i, "dir" if n in self._path_fields else "")) for n, i in self._wanted_fields(self._class)]
        fields = [(n, i, e) for n, i, e in fields if e is not None]
        rows_per_col = math.ceil(len(fields) / self._columns) if fields else 0
        for k, (name, info, editor) in enumerate(fields):
            col, row = divmod(k, rows_per_col) if rows_per_col else (0, k)
            tip = info.description or ""
            label = _label(_title(name, info), tip)
            editor.widget.setToolTip(tip)
            editor.widget.setObjectName(f"field_{self._path(name).replace('.', '_')}")
            error = _error_label()
            editor.show(getattr(obj, name))
            editor.connect(lambda value, n=name: self._on_editor_edited(n, value))
            tall = isinstance(editor.widget, ModulePicker)
            if not tall:  # ignore size hints so every form splits its width the same way
                editor.widget.setSizePolicy(QSizePolicy.Policy.Ignored, editor.widget.sizePolicy().verticalPolicy())
                editor.widget.setMinimumWidth(140)
            self._grid.addWidget(label, row * 2, col * 2, Qt.AlignmentFlag.AlignTop if tall else Qt.AlignmentFlag.AlignVCenter)
            self._grid.addWidget(editor.widget, row * 2, col * 2 + 1)
            self._grid.addWidget(error, row * 2 + 1, col * 2 + 1)
            self._editors[name] = editor
            self._errors[name] = error
            self._labels[name] = label
            message = self._model.errors().get(self._path(name), "")
            if message:
                self._show_error(name, message)
        for r in range(self._grid.rowCount()):
            self._grid.setRowStretch(r, 0)
        self._grid.setRowStretch(2 * rows_per_col + 1 if rows_per_col else 0, 1)  # spare height goes below
        for c in range(self._columns):
            self._grid.setColumnStretch(c * 2 + 1, 1)
            self._grid.setColumnMinimumWidth(c * 2, LABEL_WIDTH)
        guard_fields(self)
        self.sig_rebuilt.emit()

    def _on_editor_edited(self, name: str, value: Any) -> None:
        self._model.set(self._path(name), value)

    def _on_config_changed(self, _config) -> None:
        obj = self._section_object()
        if type(obj) is not self._class:
            self._build()
            return
        errors = self._model.errors()
        for name, editor in self._editors.items():
            if self._path(name) in errors:
                continue  # keep showing what the user typed next to the reason
            show_quietly(editor, getattr(obj, name))

    def _on_model_field_error(self, path: str, message: str) -> None:
        prefix = f"{self._section}." if self._section else ""
        if not path.startswith(prefix):
            return
        name = path[len(prefix):]
        if name in self._errors:
            self._show_error(name, message)

    def _show_error(self, name: str, message: str) -> None:
        show_error(self._editors[name].widget, self._errors[name], message)
