"""Combo boxes show readable labels: a field's own ``choice_labels`` first, then the shared table."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from studio.ui.widgets.config_form import make_editor


class _Spec(BaseModel):
    adapter_compute: Literal["auto", "fp32"] = Field(
        "auto", json_schema_extra={"choice_labels": {"fp32": "fp32 (PEFT default)"}})
    preset: Literal["fastest", "memory_saver"] = "fastest"


def _labels(qtbot, name: str) -> list[str]:
    combo = make_editor(_Spec.model_fields[name]).widget
    qtbot.addWidget(combo)
    return [combo.itemText(i) for i in range(combo.count())]


def test_field_labels_override_the_shared_table(qtbot):
    assert _labels(qtbot, "adapter_compute") == ["Auto", "fp32 (PEFT default)"]


def test_engine_preset_reads_as_words(qtbot):
    assert _labels(qtbot, "preset") == ["Fastest", "Memory saver"]
