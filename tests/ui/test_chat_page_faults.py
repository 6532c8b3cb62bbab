"""The Chat page when things go wrong, against a stand-in worker (tests/ui/fake_chat_worker.py): an
out-of-memory explained in place, a worker that dies mid-answer, a base model the worker cannot find,
a custom template that does not check out, a plain model without a tuned side, adapters switched, and
the window closing with a model loaded. The page must stay usable through all of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.core.config import demo_config
from studio.core.runs import Run, RunStore

FAKE = Path(__file__).with_name("fake_chat_worker.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_chat(monkeypatch):
    import studio.core.launcher as launcher

    monkeypatch.setattr(launcher, "worker_command", lambda *args: [sys.executable, str(FAKE), *map(str, args)])


@pytest.fixture
def run(tmp_path) -> Run:
    """A demo run with (fake) final weights in the window's runs folder."""
    run = RunStore(tmp_path / "runs").create(demo_config().replace("name", "codes"))
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_model.safetensors").write_bytes(b"x")
    return run


@pytest.fixture
def page(window, fake_chat, run):
    w = window()
    w.show()
    w.navigate("chat")
    page = w.page("chat")
    page.window_ = w
    yield page
    if page.worker is not None:
        page.worker.kill()


def _ready(qtbot, page) -> None:
    qtbot.waitUntil(lambda: page.ready is not None or page.worker is None, timeout=20_000)
    assert page.ready is not None, page.source_card.problem()


def _ask(qtbot, page, text: str) -> None:
    qtbot.keyClicks(page.composer.edit, text)
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=20_000)
    page.flush()
    qtbot.wait(30)  # new rows show on the next event-loop turn


def test_the_page_lists_runs_with_weights_and_loads_one(qtbot, page, run):
    assert page.source_card.run_combo.count() == 1 and "codes" in page.source_card.run_combo.currentText()
    assert page.source_card.weights_combo.currentText() == "Final weights"
    assert page.source_card.badge.text() == "NOT LOADED" and not page.composer.send_button.isEnabled()
    qtbot.mouseClick(page.source_card.load_button, Qt.MouseButton.LeftButton)
    _ready(qtbot, page)
    assert page.source_card.badge.text() == "READY" and page.composer.send_button.isEnabled()
    assert page.source_card.load_button.text() == "Reload"
    _ask(qtbot, page, "hello there")
    row = page.conversation.rows[0]
    assert row.bubbles["tuned"].body.text() == row.bubbles["base"].body.text() == "hello there "


def test_out_of_memory_is_explained_in_place_and_the_chat_goes_on(qtbot, page, run):
    page.run_action("chat", run)
    _ready(qtbot, page)
    _ask(qtbot, page, "OOM please")
    bubble = page.conversation.rows[0].bubbles["tuned"]
    assert bubble.error.isVisible() and bubble.error.text().startswith("Out of memory. Out of memory while answering")
    assert "Lower Max new tokens" in bubble.error.text() and bubble.status.text() == "Failed"
    assert page.worker.is_running() and page.composer.send_button.isEnabled()
    _ask(qtbot, page, "still here")
    assert page.transcript.exchanges[1].replies["base"].text == "still here "
    # the failed turn is not part of what the sides read next
    assert page.transcript.history("tuned") == [{"role": "user", "content": "still here"},
                                                {"role": "assistant", "content": "still here "}]


def test_a_worker_that_dies_mid_answer_is_reported_and_retry_brings_it_back(qtbot, page, run):
    page.run_action("chat", run)
    _ready(qtbot, page)
    _ask(qtbot, page, "please CRASH now")
    qtbot.waitUntil(lambda: page.worker is None, timeout=20_000)
    page.flush()
    bubble = page.conversation.rows[0].bubbles["tuned"]
    assert "The chat worker ended" in bubble.error.text()
    assert page.source_card.badge.text() == "ENDED" and page.source_card.retry_button.isVisible()
    assert not page.composer.send_button.isEnabled() and "Load a model first" in page.composer.hint.text()
    qtbot.mouseClick(page.source_card.retry_button, Qt.MouseButton.LeftButton)
    _ready(qtbot, page)
    _ask(qtbot, page, "back again")
    assert [e.user for e in page.transcript.exchanges] == ["please CRASH now", "back again"]  # the chat stayed


def test_a_base_model_the_worker_cannot_find_offers_locate(qtbot, page, run, monkeypatch):
    monkeypatch.setenv("FAKE_CHAT_LOAD_FAIL", "model")
    page.run_action("chat", run)
    qtbot.waitUntil(lambda: page.worker is None, timeout=20_000)
    assert "not at /gone" in page.source_card.problem() and page.source_card.locate_button.isVisible()
    assert page.source_card.badge.text() == "ENDED"


def test_a_custom_template_is_checked_as_it_is_typed_and_blocks_sending(qtbot, page, run):
    page.run_action("chat", run)
    _ready(qtbot, page)
    settings = page.settings
    settings.template_combo.setCurrentIndex(settings.template_combo.findData("custom"))
    assert settings.jinja_edit.isVisible()
    qtbot.waitUntil(lambda: bool(settings.jinja_edit.toPlainText()), timeout=10_000)  # the run's, once it is read
    settings.jinja_edit.setPlainText("{% for m in messages %}{{ m['role'] }}{% endfor %}")
    qtbot.waitUntil(lambda: "leaves out the text" in settings.jinja_status.text(), timeout=5_000)
    assert not page.composer.send_button.isEnabled() and "Fix the custom chat template" in page.composer.hint.text()
    settings.template_combo.setCurrentIndex(settings.template_combo.findData("chatml"))
    assert page.composer.send_button.isEnabled()
    sent = []
    real = page.worker.send
    page.worker.send = lambda cmd, **fields: sent.append(fields) or real(cmd, **fields)
    settings.system_edit.setPlainText("Answer briefly.")
    _ask(qtbot, page, "hi")
    assert sent[0]["template"] == "chatml" and sent[0]["system"] == "Answer briefly."


def test_a_run_with_a_custom_template_is_asked_in_it_and_the_editor_starts_from_it(qtbot, page, run):
    """Issue #15: 'As trained' is the run's custom template; the page's own editor starts from it to try others."""
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}\n"
                "{% else %}Q: {{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}A: {% endif %}")
    custom = RunStore(run.path.parent).create(demo_config().replace("name", "qa").replace("data.template", template))
    custom.adapter_dir.mkdir()
    (custom.adapter_dir / "adapter_model.safetensors").write_bytes(b"x")
    page.run_action("chat", custom)
    _ready(qtbot, page)
    settings = page.settings
    settings.prompt_button.setChecked(True)
    qtbot.waitUntil(lambda: settings.prompt_view.toPlainText() == "Q: Hello!\nA: ", timeout=10_000)
    settings.template_combo.setCurrentIndex(settings.template_combo.findData("custom"))
    assert settings.jinja_edit.toPlainText() == template
    settings.jinja_edit.setPlainText(template.replace("Q: ", "Question: "))
    qtbot.waitUntil(lambda: settings.prompt_view.toPlainText() == "Question: Hello!\nA: ", timeout=5_000)
    settings.template_combo.setCurrentIndex(settings.template_combo.findData("auto"))
    sent = []
    real = page.worker.send
    page.worker.send = lambda cmd, **fields: sent.append(fields) or real(cmd, **fields)
    _ask(qtbot, page, "hi")
    assert "template" not in sent[0]  # 'As trained': the worker renders the run's own, the custom one


def test_a_plain_model_greys_the_tuned_side_until_an_adapter_is_loaded(qtbot, page, run):
    card = page.source_card
    qtbot.mouseClick(card.model_choice, Qt.MouseButton.LeftButton)
    assert card.model_combo.isVisible() and card.model_combo.currentText() == "Demo model"
    qtbot.mouseClick(card.load_button, Qt.MouseButton.LeftButton)
    _ready(qtbot, page)
    tuned = page.heads["tuned"]
    assert not tuned.available and "no trained weights" in tuned.note.text().lower()
    assert page.answering_sides() == ["base"]
    _ask(qtbot, page, "only the base")
    assert list(page.transcript.exchanges[0].replies) == ["base"]
    assert page.conversation.rows[0].bubbles["tuned"].status.text() == "Not asked"


def test_adapters_switch_over_the_same_base_with_the_time_shown(qtbot, page, run):
    page.run_action("chat", run)
    _ready(qtbot, page)
    picker = page.adapter_picker
    assert picker.currentText() == "final" and "Load from a folder…" in picker.choice_names()
    page._on_adapter_requested("load", "step-70", str(run.adapter_dir))
    qtbot.waitUntil(lambda: page.active_adapter == "step-70", timeout=10_000)
    assert "switched in 1.5 ms" in page.heads["tuned"].note.text() and picker.currentText() == "step-70"
    assert picker.choice_names()[:2] == ["final", "step-70"]


def test_a_run_without_weights_is_refused_with_the_reason(qtbot, page, tmp_path):
    bare = RunStore(tmp_path / "runs").create(demo_config().replace("name", "untrained"))
    assert "no trained weights" in page.run_action("chat", bare)
    assert page.worker is None


def test_closing_the_window_quits_the_chat_worker(qtbot, page, run):
    page.run_action("chat", run)
    _ready(qtbot, page)
    worker = page.worker
    proc = worker._proc
    page.window_.close()
    proc.wait(timeout=10)  # it quit (the fake exits on quit or the end of its stdin)
    assert proc.returncode == 0


def test_the_chat_page_never_imports_torch(tmp_path):
    script = textwrap.dedent("""
        import sys
        from PySide6.QtWidgets import QApplication
        from PySide6.QtCore import QEventLoop, QTimer
        app = QApplication([])
        from studio.core.chat_sources import ChatSource
        from studio.core.paths import demo_model_dir
        from studio.ui.config_model import ConfigModel
        from studio.core.config import demo_config
        from studio.ui.pages.chat.page import ChatPage
        page = ChatPage(ConfigModel(demo_config()))
        page._load_tokenizer(ChatSource(model=str(demo_model_dir()), model_title="Demo model"))
        page.settings.set_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
        page.settings.prompt_button.setChecked(True)
        loop = QEventLoop(); QTimer.singleShot(1500, loop.quit); loop.exec()
        page.settings.refresh_prompt()
        print("HEAVY:", ",".join(n for n in ("torch", "transformers", "peft") if n in sys.modules))
    """)
    env = dict(os.environ, STUDIO_HOME=str(tmp_path), PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY: \n" in out.stdout + "\n", out.stdout
