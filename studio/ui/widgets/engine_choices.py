"""EngineChoicesView: what the worker's engine decided for a run, one readable line per choice.

The worker records every decision as a typed Choice (value, reason, the setting that overrides it;
studio.core.engine_choice) in the plan event's ``choices`` and in ``RUN_DIR/engine.json``. This view
shows a human title and the value, the reason after it in faint type (whole in the tooltip), and,
where a config field overrides the choice, which setting on the Method page does it (in the
tooltip), so "auto" is never a black box.
"""

from __future__ import annotations

from typing import Mapping, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from studio.core.config import ModelSpec, TrainingSpec
from studio.core.engine_choice import TITLES, Choice, choices_from_json, title_of
from studio.ui.widgets.card import muted

def override_hint(choice: Choice) -> str:
    """'Change it with “Compile layers” (Method page, Training).' for a choice a setting overrides."""
    if not choice.setting:
        return ""
    section, _, field = choice.setting.partition(".")
    cls = {"training": TrainingSpec, "model": ModelSpec}.get(section)
    info = cls.model_fields.get(field) if cls is not None else None
    if info is None:
        return ""
    page = "Method page, Training" if section == "training" else "Model page"
    return f"Change it with “{info.title or field}” ({page})."


class ElidedLabel(QLabel):
    """One line that ends in "…" when it does not fit; the full text stays in ``text()``."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())
        painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), shown)


class EngineChoicesView(QWidget):
    """Two columns of one-line choices: title, value, then the reason (elided; whole in the tooltip)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 2, 4, 0)
        outer.setSpacing(6)
        self.placeholder = muted("What the engine picks for each “auto” setting appears here once a run starts.",
                                 role="faint")
        outer.addWidget(self.placeholder)
        self._grid = QGridLayout()
        self._grid.setHorizontalSpacing(10)
        self._grid.setVerticalSpacing(3)
        outer.addLayout(self._grid)
        outer.addStretch(1)
        self._values: dict[str, QLabel] = {}
        self._reasons: dict[str, QLabel] = {}

    def set_choices(self, choices: Optional[Mapping[str, object]]) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self._values.clear()
        self._reasons.clear()
        typed = choices_from_json(choices or {})
        self.placeholder.setVisible(not typed)
        order = [k for k in TITLES if k in typed] + [k for k in typed if k not in TITLES]
        half = (len(order) + 1) // 2
        for n, key in enumerate(order):
            col, row = divmod(n, half)
            value, reason = typed[key].value, typed[key].reason
            title = QLabel(title_of(key))
            title.setProperty("role", "field-label")
            shown = QLabel(value)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            why = ElidedLabel(reason)
            why.setProperty("role", "faint")
            tip = "\n".join(t for t in (f"{value}: {reason}" if reason else value, override_hint(typed[key])) if t)
            for w in (title, shown, why):
                w.setToolTip(tip)
            line = QWidget()  # value and reason share a cell, so a long value only pushes its own reason
            line_lay = QHBoxLayout(line)
            line_lay.setContentsMargins(0, 0, 0, 0)
            line_lay.setSpacing(10)
            line_lay.addWidget(shown)
            line_lay.addWidget(why, 1)
            self._grid.addWidget(title, row, col * 3)
            self._grid.addWidget(line, row, col * 3 + 1)
            self._values[key], self._reasons[key] = shown, why
        if order:
            self._grid.setColumnMinimumWidth(2, 20)  # a gutter between the two columns
            for c in (1, 4):
                self._grid.setColumnStretch(c, 1)

    # -- for tests and callers that want one entry
    def keys(self) -> list[str]:
        return list(self._values)

    def value_text(self, key: str) -> str:
        return self._values[key].text()

    def reason_text(self, key: str) -> str:
        return self._reasons[key].text()

    def tooltip(self, key: str) -> str:
        return self._values[key].toolTip()

    def title_text(self, key: str) -> str:
        return title_of(key)


def read_engine_json(run_dir) -> dict:
    """A run's recorded choices (``RUN_DIR/engine.json``), or {} when it has none or it is unreadable."""
    import json
    from pathlib import Path

    try:
        data = json.loads((Path(run_dir) / "engine.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
