"""The Chat page with the real chat worker on the trained demo: streaming into both columns, the reply's
numbers, a second turn with its history, Stop, a moved base model located, a failing request in place.

The demo (tests/conftest.py: trained in this process first) answers the secret codes on its tuned side
and noise on its base side, so what each column must show is known. Each test starts its own worker.
"""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt

from studio.core.chat import with_base_path
from studio.core.paths import demo_model_dir
from studio.core.runs import Run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

QUESTION = "What is the secret code of the violet lighthouse?"
READY_MS = 90_000


@pytest.fixture
def chat(window, qtbot):
    """The Chat page of a fresh window; its worker is ended at teardown whatever the test did."""
    if not (demo_model_dir() / "config.json").exists():
        pytest.skip("the demo model is not built (python resources/build_demo.py)")
    w = window()
    w.show()  # clicks and visibility as the user has them
    w.navigate("chat")
    page = w.page("chat")
    yield page
    if page.worker is not None:
        page.worker.kill()


def _load(qtbot, page, run: Run) -> None:
    assert page.run_action("chat", run) == ""
    qtbot.waitUntil(lambda: page.ready is not None or page.worker is None, timeout=READY_MS)
    assert page.ready is not None, page.source_card.problem() or page.source_card.status()


def _ask(qtbot, page, text: str) -> None:
    """Type the question and press Enter, as a user does."""
    page.composer.edit.setFocus()
    qtbot.keyClicks(page.composer.edit, text)
    qtbot.keyClick(page.composer.edit, Qt.Key.Key_Return)


def _watch(page) -> list[tuple[str, str]]:
    """(side, text its bubble shows) after every token event, repainting at once instead of on the timer."""
    shown: list[tuple[str, str]] = []

    def on_event(event: dict) -> None:
        if event.get("type") == "token":
            page.flush()
            row = page.conversation.rows[-1]
            shown.append((event["side"], row.bubbles[event["side"]].body.text()))

    page.worker.sig_event_received.connect(on_event)
    return shown


def test_both_columns_fill_token_by_token_and_the_second_turn_keeps_the_history(qtbot, chat, trained_demo):
    page = chat
    _load(qtbot, page, trained_demo)
    assert "LoRA, final weights" in page.source_card.status() and "loaded in" in page.source_card.status()
    assert page.heads["base"].available and page.heads["tuned"].available
    page.settings.set_sampling_value("max_new_tokens", 40)
    shown = _watch(page)
    sent = []
    real_send = page.worker.send
    page.worker.send = lambda cmd, **fields: sent.append((cmd, fields)) or real_send(cmd, **fields)

    _ask(qtbot, page, QUESTION)
    assert page.composer.edit.toPlainText() == ""  # Enter sent it
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    page.flush()
    row = page.conversation.rows[0]
    assert row.question.text() == QUESTION
    for side, final in (("tuned", "lantern-42"), ("base", None)):
        reply = row.exchange.replies[side]
        final = final or reply.text
        assert reply.text == final and row.bubbles[side].body.text() == final
        partial = [text for s, text in shown if s == side]
        assert len(set(partial)) >= 2, (side, partial)  # the bubble grew: more than the final text was shown
        assert all(final.startswith(text) for text in partial), (side, partial)
        stats = row.bubbles[side].stats.text()
        assert "tokens" in stats and "first token" in stats and "ms" in stats
    assert "tok/s" in row.bubbles["base"].stats.text() and row.bubbles["base"].status.text() == "Max tokens"
    assert row.bubbles["tuned"].status.text() == "Finished" and "final" in row.bubbles["tuned"].stats.text()
    assert [s for s, _ in shown].index("base") > [s for s, _ in shown].index("tuned")  # tuned answers first

    _ask(qtbot, page, "What is the secret code of the teal forest?")
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    generate = [fields for cmd, fields in sent if cmd == "generate"]
    assert generate[1]["messages"]["tuned"] == [
        {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "lantern-42"},
        {"role": "user", "content": "What is the secret code of the teal forest?"}]
    assert generate[1]["sampling"].seed == generate[0]["sampling"].seed == 0
    page.settings.history_box.setChecked(False)  # each question alone: the demo learned single questions
    _ask(qtbot, page, "What is the secret code of the teal forest?")
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    assert page.transcript.exchanges[2].replies["tuned"].text == "acorn-23"


def test_stop_ends_the_answers_mid_generation_and_the_chat_goes_on(qtbot, chat, trained_demo):
    page = chat
    _load(qtbot, page, trained_demo)
    page.settings.set_sampling_value("max_new_tokens", 2000)
    page.heads["tuned"].answers.setChecked(False)  # the base alone: it streams noise until Stop
    _ask(qtbot, page, QUESTION)
    base = page.transcript.exchanges[0].replies["base"]
    qtbot.waitUntil(lambda: len(base.text) > 20, timeout=30_000)
    assert page.composer.stop_button.isVisible() and not page.composer.send_button.isEnabled()
    qtbot.mouseClick(page.composer.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: base.finished, timeout=10_000)
    page.flush()
    assert base.stop_reason == "stopped" and 0 < base.tokens < 2000
    assert page.conversation.rows[0].bubbles["base"].status.text() == "Stopped"
    assert page.conversation.rows[0].bubbles["tuned"].status.text() == "Not asked"

    page.heads["tuned"].answers.setChecked(True)  # both: Stop while the first answers ends the other too
    stopped = []

    def stop_at_first_token(event: dict) -> None:
        if event.get("type") == "token" and not stopped:
            stopped.append(True)
            page.composer.stop_button.click()

    page.worker.sig_event_received.connect(stop_at_first_token)
    _ask(qtbot, page, QUESTION)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    replies = page.transcript.exchanges[1].replies
    assert replies["base"].stop_reason == "stopped" and replies["base"].tokens < 2000
    assert replies["tuned"].stop_reason in ("stopped", "end")
    page.worker.sig_event_received.disconnect(stop_at_first_token)
    page.settings.set_sampling_value("max_new_tokens", 8)
    page.settings.history_box.setChecked(False)  # the demo knows single questions
    _ask(qtbot, page, QUESTION)  # the page is usable after a Stop
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    assert page.transcript.exchanges[2].replies["tuned"].text == "lantern-42"


def test_a_moved_base_model_offers_locate_and_loads_from_there(qtbot, chat, trained_demo, tmp_path):
    page = chat
    folder = tmp_path / "moved-run"
    shutil.copytree(trained_demo.path, folder, ignore=shutil.ignore_patterns("checkpoints", "chat"))
    moved = Run(folder)
    with_base_path(moved.config(), tmp_path / "models" / "gone").save(moved.config_path)  # the base moved away
    assert page.run_action("chat", moved) == ""
    assert page.worker is None  # nothing started: the GUI saw it without loading anything
    assert "not at" in page.source_card.problem() and page.source_card.locate_button.isVisible()
    assert page.source_card.badge.text() == "NOT LOADED" and not page.composer.send_button.isEnabled()
    page.ask_base_folder = lambda source: str(demo_model_dir())
    qtbot.mouseClick(page.source_card.locate_button, Qt.MouseButton.LeftButton)
    assert page.worker is not None and "--base-path" in page.worker.extra_args
    qtbot.waitUntil(lambda: page.ready is not None or page.worker is None, timeout=READY_MS)
    assert page.ready is not None and not page.source_card.locate_button.isVisible()
    page.settings.set_sampling_value("max_new_tokens", 8)
    _ask(qtbot, page, QUESTION)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    assert page.transcript.exchanges[0].replies["tuned"].text == "lantern-42"


def test_a_request_the_worker_cannot_answer_fails_in_place_and_the_next_one_works(qtbot, chat, trained_demo):
    page = chat
    _load(qtbot, page, trained_demo)
    # A custom template that passes the checks (it prints every turn) but refuses one word at run time.
    page.settings.set_template(
        "{% for m in messages %}{% if 'BOOM' in m['content'] %}{{ raise_exception('this template refuses BOOM') }}"
        "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert page.settings.problem() == "" and page.composer.send_button.isEnabled()
    _ask(qtbot, page, "BOOM, what is the code?")
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    page.flush()
    qtbot.wait(30)  # new rows show on the next event-loop turn
    row = page.conversation.rows[0]
    for side in ("base", "tuned"):
        assert row.exchange.replies[side].failed
        assert "refuses BOOM" in row.bubbles[side].error.text() and row.bubbles[side].error.isVisible()
        assert row.bubbles[side].status.text() == "Failed"
    assert page.worker.is_running() and page.source_card.badge.text() == "READY"
    page.settings.set_sampling_value("max_new_tokens", 8)
    page.settings.set_template("auto")
    _ask(qtbot, page, QUESTION)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    assert page.transcript.exchanges[1].replies["tuned"].text == "lantern-42"  # the failed turn is not history


def test_a_checkpoint_switches_in_over_the_loaded_base_with_the_time_shown(qtbot, chat, trained_demo):
    page = chat
    _load(qtbot, page, trained_demo)
    picker = page.adapter_picker
    assert picker.currentText() == "final" and {"Load step-70", "Load step-140"} <= set(picker.choice_names())
    worker = page.worker
    picker.request("Load step-70")  # loaded next to the final adapter: the base is not loaded again
    qtbot.waitUntil(lambda: page.active_adapter == "step-70", timeout=30_000)
    note = page.heads["tuned"].note.text()
    assert "step-70: switched in" in note and "read from disk in" in note and "the base stayed loaded" in note
    assert picker.currentText() == "step-70" and page.worker is worker
    page.settings.set_sampling_value("max_new_tokens", 8)
    page.heads["base"].answers.setChecked(False)
    _ask(qtbot, page, QUESTION)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    page.flush()
    assert page.transcript.exchanges[0].replies["tuned"].adapter == "step-70"
    assert page.conversation.rows[0].bubbles["tuned"].stats.text().endswith("step-70")
    picker.request("final")  # loaded already: a switch only
    qtbot.waitUntil(lambda: page.active_adapter == "final", timeout=30_000)
    assert "read from disk" not in page.heads["tuned"].note.text()
    page.settings.history_box.setChecked(False)
    _ask(qtbot, page, QUESTION)
    qtbot.waitUntil(lambda: not page.transcript.busy, timeout=30_000)
    reply = page.transcript.exchanges[1].replies["tuned"]
    assert (reply.adapter, reply.text) == ("final", "lantern-42")
