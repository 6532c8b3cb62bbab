"""The method page: unavailable methods disabled with the reason, info beside the form, config dialog."""

from __future__ import annotations

from studio.core import gpu
from studio.core.gpu import GpuState


def test_qlora_disabled_without_cuda_with_reason(qtbot, window):
    page = window().page("method")
    qlora = page.method_buttons["qlora"]
    assert not qlora.isEnabled()
    assert "NVIDIA GPU" in qlora.toolTip()
    reasons = " ".join(l.text() for l in page._reason_labels.values())
    assert "QLoRA needs an NVIDIA GPU" in reasons
    assert page.method_buttons["lora"].isEnabled() and page.method_buttons["lora"].isChecked()


def test_with_a_gpu_qlora_needs_only_bitsandbytes(qtbot, window, monkeypatch):
    gpu.use_fake([GpuState(0, "Fake H100", 1 << 30, 80 << 30, 3)])
    monkeypatch.setattr(gpu, "has_bitsandbytes", lambda: True)
    page = window().page("method")
    assert page.method_buttons["qlora"].isEnabled()


def test_choosing_a_method_shows_its_info_and_form(qtbot, window):
    w = window()
    page = w.page("method")
    page.method_buttons["dora"].click()
    assert w.config_model.config.method.name == "dora"
    assert page._settings_card.title_label.text() == "DoRA settings"
    assert page._info_labels["summary"].text()
    assert "merged" in page._info_labels["merge"].text()
    assert w._pills["method"].text() == "DoRA"


def test_switching_method_scales_learning_rate_to_its_recommendation(qtbot, window):
    from studio.core.methods import method_class

    w = window()
    page = w.page("method")
    lr = w.config_model.config.training.learning_rate
    target = next(c for c in ("prompt_tuning", "ia3", "full") if page.method_buttons[c].isEnabled())
    page.method_buttons[target].click()
    ratio = method_class(target).recommended_lr / method_class("lora").recommended_lr
    assert abs(w.config_model.config.training.learning_rate - float(f"{lr * ratio:.3g}")) < 1e-12


def test_show_config_dialog_has_yaml_and_cli(qtbot, window):
    from studio.ui.dialogs.config_dialog import ConfigDialog

    w = window()
    w.config_model.set("training.batch_size", 7)
    dialog = ConfigDialog(w.config_model.config, w)
    qtbot.addWidget(dialog)
    assert "batch_size: 7" in dialog.yaml_view.toPlainText()
    assert dialog.cli_edit.text() == "studio train config.yaml"
    from PySide6.QtGui import QGuiApplication

    dialog._copy(dialog.cli_edit.text(), "Command copied.")
    assert QGuiApplication.clipboard().text() == "studio train config.yaml"


def test_run_name_is_validated_in_the_form(qtbot, window):
    w = window()
    form = w.page("method").run_form
    edit = form.editor("name")
    edit.setText("a/b")
    edit.editingFinished.emit()
    assert "may not contain /" in form.error_text("name")
    assert w.config_model.config.name != "a/b"


def test_every_method_button_shows_its_whole_title(qtbot, window):
    w = window()
    w.resize(900, 700)  # narrower than usual: columns shrink, titles must not
    page = w.page("method")
    w.navigate("method")
    qtbot.waitExposed(w)
    for key, b in page.method_buttons.items():
        assert "(" not in b.text(), key
        assert b.fontMetrics().horizontalAdvance(b.text()) < b.width(), f"{key}: {b.text()!r} is clipped"
    qr = page.method_buttons["qr_adaptor"]
    assert qr.text() == "QR-Adaptor" and "per-layer rank + precision" in qr.toolTip()
