"""A rejected value stays visible with the form's words for it, wherever it is reported (issue #13.9).

A learning rate of -1 used to show as "0" beside "must be greater than 0", and the Train page
named the field ``training.learning_rate``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt


def _type_into(qtbot, spin, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)


def test_a_negative_learning_rate_stays_visible_beside_its_message(qtbot, window):
    w = window()
    w.show()
    w.navigate("method")
    form = next(f for f in w.pages["method"].training_forms if "learning_rate" in f.field_names())
    lr = form.editor("learning_rate")
    before = w.config_model.config.training.learning_rate
    _type_into(qtbot, lr, "-1")
    assert lr.text() == "-1" and "greater than 0" in form.error_text("learning_rate")
    assert w.config_model.config.training.learning_rate == before
    w.navigate("train")
    train = w.page("train")
    train.train_button.click()
    assert train.worker is None
    assert "Learning rate (Method page): must be greater than 0" in train.banner.text()
    assert "training.learning_rate" not in train.banner.text()


def test_arrows_stay_inside_the_valid_range(qtbot, window):
    w = window()
    w.navigate("method")
    form = next(f for f in w.pages["method"].training_forms if "warmup_ratio" in f.field_names())
    warmup = form.editor("warmup_ratio")
    warmup.setValue(0.0)
    warmup.stepBy(-3)
    assert warmup.value() == 0.0 and form.error_text("warmup_ratio") == ""
    lr = next(f for f in w.pages["method"].training_forms if "learning_rate" in f.field_names()).editor("learning_rate")
    lr.setValue(2e-4)
    lr.stepBy(-5)  # 2e-4 - 5e-4 would be negative: the open bound at 0 keeps the value
    assert lr.value() == 2e-4
