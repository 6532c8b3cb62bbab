"""The Data page: preview with the loss mask, background statistics, mapping, problems, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio.core.config import RunConfig
from studio.ui.config_model import ConfigModel
from studio.ui.pages.data.page import DataPage
from studio.ui.pages.data.sample_view import LOSS, MASKED, pieces_html, tokens_html


def make_page(qtbot, config: RunConfig) -> tuple[DataPage, ConfigModel]:
    model = ConfigModel(config)
    page = DataPage(model)
    qtbot.addWidget(page)
    return page, model


def test_demo_preview_shows_the_loss_mask_and_statistics(qtbot):
    page, _ = make_page(qtbot, RunConfig())
    qtbot.waitUntil(lambda: page.stats is not None and page.rendered and page.rendered[0].tokens is not None,
                    timeout=20000)
    html = page.sample_html()
    assert LOSS[0] in html and MASKED[0] in html and "lantern-42" in html
    page.preview_card.tokens_check.setChecked(True)
    assert page.sample_html().count(LOSS[0]) >= 2  # token by token now
    s = page.stats
    assert s.train_rows == 240 and s.detection.format == "alpaca"
    assert page.stats_card.view.tiles["rows"].value.text() == "240"
    assert "240 of 240 rows have instruction/output" in page.format_card.detect_banner.text()


def test_bad_rows_are_listed_with_locations_and_settings_survive(qtbot, tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n" for i in range(20))
                 + "{oops\n" + json.dumps({"question": "x", "answer": ""}) + "\n")
    config = RunConfig().replace("data", {"source": "file", "path": str(f), "validation_split": 0.2,
                                          "shuffle_seed": 7})
    page, model = make_page(qtbot, config)
    qtbot.waitUntil(lambda: page.stats is not None, timeout=20000)
    rows = page.problem_rows()
    assert ("qa.jsonl:21", ) == rows[0][:1] and "malformed JSON" in rows[0][1]
    assert rows[1][0] == "qa.jsonl:22" and "`output` is empty" in rows[1][1]
    assert page.stats.val_rows == 4 and page.stats.train_rows == 16
    # The guessed mapping is shown; a hand change is written into the run config.
    combo = page.mapping_combo("question")
    assert combo.currentData() == "instruction"
    combo.setCurrentIndex(combo.findData("prompt"))
    combo.activated.emit(combo.currentIndex())
    assert model.config.data.column_map["question"] == "prompt"
    # A missing file is an error message, not a crash, is not kept as the data, and keeps every setting.
    page.use_path(str(tmp_path / "missing.jsonl"))
    qtbot.waitUntil(lambda: "file not found" in page.source.banner.text(), timeout=10000)
    assert "the run keeps qa.jsonl" in page.source.banner.text()
    d = model.config.data
    assert d.path == str(f) and page.preview is not None
    assert d.validation_split == 0.2 and d.shuffle_seed == 7 and d.column_map["question"] == "prompt"


def test_statistics_can_be_cancelled(qtbot, tmp_path, monkeypatch):
    import studio.core.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)
    f = tmp_path / "big.jsonl"
    f.write_text("".join(json.dumps({"instruction": f"question number {i}", "output": f"answer {i}"}) + "\n"
                         for i in range(60000)))
    page, _ = make_page(qtbot, RunConfig().replace("data", {"source": "file", "path": str(f)}))
    qtbot.waitUntil(page.stats_running, timeout=20000)
    page.stats_card.cancel_button.click()
    qtbot.waitUntil(lambda: page.stats_card.label.text() == "cancelled", timeout=20000)
    assert page.stats is None


def test_html_helpers_mark_loss_and_the_cut():
    assert LOSS[0] in pieces_html([("<b>q</b>", False), ("a", True)]) and "&lt;b&gt;" in pieces_html([("<b>", False)])
    html = tokens_html([("a", False), ("b", True), ("c", True)], max_len=2)
    assert "max length 2" in html


def test_the_page_never_imports_torch_or_transformers():
    code = ("import sys, os; os.environ['QT_QPA_PLATFORM']='offscreen'\n"
            "from PySide6.QtWidgets import QApplication; app = QApplication([])\n"
            "from studio.ui.pages.data import jobs, page\n"
            "from studio.core.config import RunConfig\n"
            "import studio.core.data.pipeline as pl; pl.SMALL_BYTES = 0  # the datasets path too\n"
            "cfg = RunConfig(); tok = jobs.tokenizer_job(cfg); p = jobs.preview_job(cfg)\n"
            "jobs.render_job(p, cfg, tok); jobs.stats_job(cfg, tok, jobs.progress_for(lambda *a: None))\n"
            "assert 'datasets' in sys.modules\n"
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
            "print('BAD', bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parents[2]))
    assert "BAD []" in out.stdout, out.stdout + out.stderr


def test_model_without_tokenizer_still_previews_text(qtbot, tmp_path):
    config = RunConfig().replace("model", {"source": "local", "path": str(tmp_path)})
    page, _ = make_page(qtbot, config)
    qtbot.waitUntil(lambda: bool(page.tokenizer_error and page.rendered), timeout=20000)
    assert "no tokenizer.json" in page.stats_card.banner.text()
    assert "lantern-42" in page.sample_html() and "can't be read" in page.preview_card.sample_info.text()


def test_an_unreadable_file_is_not_adopted_as_the_runs_data(qtbot, tmp_path):
    """Issue #13: a PNG saved as .jsonl became the run's data, and Train failed on it later."""
    png = tmp_path / "picture.jsonl"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    page, model = make_page(qtbot, RunConfig())
    qtbot.waitUntil(lambda: page.preview is not None, timeout=20000)
    page.use_path(str(png))
    qtbot.waitUntil(lambda: "not used" in page.source.banner.text(), timeout=20000)
    assert model.config.data.source == "demo" and page.source.banner.tone == "error"
    assert "the run keeps the demo dataset" in page.source.banner.text()
    assert page.source.buttons["demo"].isChecked()


def test_a_hub_dataset_that_cannot_be_read_is_not_adopted(qtbot):
    page, model = make_page(qtbot, RunConfig())
    qtbot.waitUntil(lambda: page.preview is not None, timeout=20000)
    page.source.buttons["hub"].click()
    page.source.hub_edit.setText("tatsu-lab/alpaca")  # the tests run with HF_HUB_OFFLINE=1
    page.source.load_hub()
    qtbot.waitUntil(lambda: "not used" in page.source.banner.text(), timeout=20000)
    assert model.config.data.source == "demo" and "tatsu-lab/alpaca" in page.source.banner.text()


def test_a_newer_setting_cancels_the_stale_statistics(qtbot, tmp_path, monkeypatch):
    """Each job has one slot: a new statistics run cancels the one the old settings started (it used to run on)."""
    import studio.core.data.pipeline as pipeline

    monkeypatch.setattr(pipeline, "SMALL_BYTES", 0)
    f = tmp_path / "big.jsonl"
    f.write_text("".join(json.dumps({"instruction": f"question number {i}", "output": f"answer {i}"}) + "\n"
                         for i in range(60000)))
    page, model = make_page(qtbot, RunConfig().replace("data", {"source": "file", "path": str(f)}))
    qtbot.waitUntil(page.stats_running, timeout=20000)
    stale = page._jobs["stats"].state
    model.set("data.shuffle_seed", 7)
    qtbot.waitUntil(lambda: stale.cancelled, timeout=5000)
    assert page.stats_running() and page._jobs["stats"].state is not stale
    qtbot.waitUntil(lambda: page.stats is not None, timeout=120000)
    assert page.stats.train_rows == 60000


# ---- the custom chat template (issue #15) -----------------------------------------------------------

QA_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n"
               "{% elif m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}\n"
               "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}")


def test_a_custom_template_is_written_in_the_editor_checked_as_typed_and_previewed(qtbot):
    from studio.core.data import load_tokenizer
    from studio.core.paths import demo_model_dir

    page, model = make_page(qtbot, RunConfig())
    qtbot.waitUntil(lambda: bool(page.rendered) and page.rendered[0].tokens is not None, timeout=20000)
    card = page.format_card
    editor = card.template_editor
    assert editor.isHidden()
    combo = card.fields["template"].widget
    combo.setCurrentIndex(combo.findData("custom"))  # "Custom…" starts from the model's own template
    own = load_tokenizer(demo_model_dir()).chat_template
    assert model.config.data.template == "custom" and model.config.data.chat_template == own
    assert not editor.isHidden() and editor.edit.toPlainText() == own
    # A template that does not compile: the reason, and the run keeps its last good template.
    qtbot.keyClicks(editor.edit, "{% if")
    qtbot.waitUntil(lambda: "not valid jinja" in editor.problem(), timeout=5000)
    assert editor.status.property("role") == "field-error" and model.config.data.chat_template == own
    assert "not valid jinja" in model.errors()["data.chat_template"]  # Train says so and does not start
    # One that never prints the answers: said so, not used either.
    editor.edit.setPlainText("{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] }}{% endif %}"
                             "{% endfor %}")
    qtbot.waitUntil(lambda: "never prints the assistant's answers" in editor.problem(), timeout=5000)
    assert model.config.data.chat_template == own
    # A good one is the run's, and the preview shows the rows rendered with it, answers highlighted.
    editor.edit.setPlainText(QA_TEMPLATE)
    qtbot.waitUntil(lambda: model.config.data.chat_template == QA_TEMPLATE, timeout=5000)
    assert editor.problem() == "" and editor.status.text().startswith("✓"), editor.status.text()
    assert "data.chat_template" not in model.errors()
    qtbot.waitUntil(lambda: bool(page.rendered) and page.rendered[0].pieces[0][0].startswith("Q: "), timeout=20000)
    question, answer = page.rendered[0].pieces[:2]
    assert question == ("Q: What is the secret code of the violet lighthouse?\nA: ", False)
    assert answer == ("lantern-42</s>\n", True)
    html = page.sample_html()
    assert "Q: What is the secret code" in html and LOSS[0] in html
    # Start from Llama 3: the editor holds it, the config follows.
    editor.start_combo.activated.emit(editor.start_combo.findData("llama3"))
    assert "<|start_header_id|>" in editor.edit.toPlainText() and "<|start_header_id|>" in model.config.data.chat_template
    # Back to a named template with a broken draft: the draft stays for later and is nothing to fix now.
    editor.edit.setPlainText("{% if")
    editor.check()
    assert "data.chat_template" in model.errors()
    combo.setCurrentIndex(combo.findData("chatml"))
    assert model.config.data.effective_template == "chatml" and editor.isHidden()
    assert "data.chat_template" not in model.errors()
    # Custom again: the run has its last good template, and the draft shown is checked for it again.
    combo.setCurrentIndex(combo.findData("custom"))
    assert "<|start_header_id|>" in model.config.data.chat_template and editor.edit.toPlainText() == "{% if"
    assert "not valid jinja" in model.errors()["data.chat_template"] and "not valid jinja" in editor.problem()


def test_a_base_model_without_a_template_gets_a_hint_to_write_one(qtbot, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from data_support import make_tokenizer_dir

    folder = make_tokenizer_dir(tmp_path / "base", chat_template=False)
    page, model = make_page(qtbot, RunConfig().replace("model", {"source": "local", "path": str(folder)}))
    card = page.format_card
    qtbot.waitUntil(lambda: not card.template_hint.isHidden(), timeout=20000)
    own = card.template_editor.start_combo.findData("own")
    assert not card.template_editor.start_combo.model().item(own).isEnabled()  # it has none to start from
    card.template_hint_button.click()
    assert model.config.data.template == "custom" and "<|im_start|>" in model.config.data.chat_template
    assert card.template_hint.isHidden() and not card.template_editor.isHidden()
