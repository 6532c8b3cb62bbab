"""The generated form: labels, tooltips, ranges and editors come from the pydantic fields; edits validate."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QSpinBox

from studio.core.config import TrainingSpec
from studio.ui.config_model import ConfigModel
from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.module_picker import ModulePicker


def _label_texts(form):
    return {w.text() for w in form.findChildren(QLabel) if w.property("role") == "field-label"}


def test_metadata_drives_editors(qtbot):
    model = ConfigModel()
    form = ConfigForm(model, "training")
    qtbot.addWidget(form)
    assert set(form.field_names()) == set(TrainingSpec.model_fields)
    assert {"Learning rate", "Micro-batch", "Gradient accumulation"} <= _label_texts(form)
    batch = form.editor("batch_size")
    assert isinstance(batch, QSpinBox) and (batch.minimum(), batch.maximum()) == (1, 4096)
    assert batch.toolTip() == TrainingSpec.model_fields["batch_size"].description
    assert isinstance(form.editor("learning_rate"), QDoubleSpinBox)
    assert form.editor("learning_rate").text() == "0.0002"
    sched = form.editor("lr_scheduler")
    assert isinstance(sched, QComboBox)
    assert [sched.itemData(i) for i in range(sched.count())] == ["cosine", "linear", "constant", "constant_with_warmup"]


def test_two_way_binding(qtbot):
    model = ConfigModel()
    form = ConfigForm(model, "training")
    qtbot.addWidget(form)
    form.editor("batch_size").setValue(16)
    assert model.config.training.batch_size == 16
    form.editor("lr_scheduler").setCurrentIndex(1)
    assert model.config.training.lr_scheduler == "linear"
    model.set("training.grad_accum", 8)  # a change from elsewhere shows in the widget
    assert form.editor("grad_accum").value() == 8


def test_invalid_value_is_shown_not_applied(qtbot):
    model = ConfigModel()
    form = ConfigForm(model, "training")
    qtbot.addWidget(form)
    form.editor("learning_rate").setValue(0.0)
    assert model.config.training.learning_rate == 2e-4
    assert "greater than 0" in form.error_text("learning_rate")
    assert form.editor("learning_rate").property("invalid") is True
    form.editor("learning_rate").setValue(1e-4)
    assert model.config.training.learning_rate == 1e-4 and form.error_text("learning_rate") == ""


def test_method_form_rebuilds_and_uses_module_picker(qtbot):
    model = ConfigModel()
    form = ConfigForm(model, "method")
    qtbot.addWidget(form)
    assert "name" not in form.field_names()
    picker = form.editor("target_modules")
    assert isinstance(picker, ModulePicker) and picker.value() == "all-linear"
    picker._some.setChecked(True)
    assert model.config.method.target_modules == ["q_proj", "v_proj"]
    picker._buttons["o_proj"].setChecked(True)
    assert model.config.method.target_modules == ["q_proj", "v_proj", "o_proj"]
    assert isinstance(form.editor("use_rslora"), QCheckBox)
    model.set_method("dora")
    assert model.config.method.name == "dora"
    assert model.config.method.target_modules == ["q_proj", "v_proj", "o_proj"], "shared fields carry over"
    assert form.editor("target_modules").value() == ["q_proj", "v_proj", "o_proj"]
    model.set_method("ia3")
    assert form.editor("target_modules").value() == "auto"


def test_every_method_gets_a_form(qtbot):
    from studio.core.methods import METHOD_CLASSES

    model = ConfigModel()
    form = ConfigForm(model, "method")
    qtbot.addWidget(form)
    for cls in METHOD_CLASSES:
        name = cls.model_fields["name"].default
        model.set_method(name)
        assert model.config.method.name == name
        assert set(form.field_names()) <= set(cls.model_fields) - {"name"}
        assert not model.errors()


def test_a_bound_field_is_the_forms_editor_for_a_page_that_places_it(qtbot):
    """The Data page's fields: labels and choices from DataSpec, edits into the config, the config shown back."""
    from PySide6.QtWidgets import QWidget

    from studio.ui.widgets.config_form import BoundField

    model = ConfigModel()
    host = QWidget()
    qtbot.addWidget(host)
    fmt, share, eos = (BoundField(model, f"data.{n}") for n in ("format", "validation_split", "add_eos"))
    for field in (fmt, share, eos):
        field.widget.setParent(host)
        field.error.setParent(host)
    assert fmt.label.text() == "Shape" and fmt.widget.itemText(0) == "Detect automatically"
    fmt.widget.setCurrentIndex(fmt.widget.findData("sharegpt"))
    assert model.config.data.format == "sharegpt"
    assert isinstance(share.widget, QDoubleSpinBox) and share.widget.suffix() == " %"
    assert share.widget.maximum() == 50.0
    share.widget.setValue(12.5)
    assert model.config.data.validation_split == 0.125
    assert isinstance(eos.widget, QCheckBox) and eos.widget.text() == "End each example with EOS"
    model.set("data.add_eos", False)  # the config, changed elsewhere, is shown
    model.set("data.validation_split", 0.05)
    assert not eos.widget.isChecked() and share.widget.value() == 5.0
    assert not share.commit(0.9) and "less than or equal to 0.5" in share.error.text()
    assert model.config.data.validation_split == 0.05
