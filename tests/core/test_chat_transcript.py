"""The side-by-side conversation filled in by the chat worker's events: streaming, histories, failures."""

from __future__ import annotations

import pytest

from studio.core.chat import command_line
from studio.core.chat_transcript import DONE, STREAMING, WAITING, Transcript


def _finish(t, request, side, text, reason="end", **extra):
    return t.apply({"type": "reply", "id": request, "side": side, "text": text, "tokens": 3, "first_token_s": 0.02,
                    "tokens_per_s": 40.0, "stop_reason": reason, **extra})


def test_tokens_fill_a_reply_then_the_reply_event_finishes_it():
    t = Transcript()
    exchange, fields = t.ask("Hi", ["tuned", "base"])
    assert fields == {"id": "1", "sides": ["tuned", "base"],
                      "messages": {"tuned": [{"role": "user", "content": "Hi"}],
                                   "base": [{"role": "user", "content": "Hi"}]}}
    command_line("generate", **fields)  # what the worker accepts
    tuned = exchange.replies["tuned"]
    assert tuned.state == WAITING and t.busy
    assert t.apply({"type": "token", "id": "1", "side": "tuned", "text": "lan"}) == [tuned]
    t.apply({"type": "token", "id": "1", "side": "tuned", "text": "tern"})
    assert (tuned.state, tuned.text, tuned.revision) == (STREAMING, "lantern", 2)
    _finish(t, "1", "tuned", "lantern-42", adapter="final")
    assert (tuned.state, tuned.text, tuned.tokens, tuned.adapter) == (DONE, "lantern-42", 3, "final")
    assert t.busy and t.pending is exchange  # the base has not answered yet
    _finish(t, "1", "base", "noise", reason="length")
    assert not t.busy and exchange.finished


def test_each_side_keeps_its_own_history_and_failed_turns_drop_out():
    t = Transcript()
    t.ask("first", ["base", "tuned"])
    _finish(t, "1", "base", "b1")
    t.apply({"type": "error", "id": "1", "side": "tuned", "message": "Out of memory", "kind": "oom"})
    _finish(t, "1", "tuned", "", reason="error")
    assert t.exchanges[0].replies["tuned"].error_kind == "oom"
    t.ask("second", ["tuned"])  # the base side switched off for this one
    _finish(t, "2", "tuned", "t2", reason="stopped")  # a stopped answer keeps what was shown
    _, fields = t.ask("third", ["base", "tuned"])
    assert fields["messages"]["base"] == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "b1"},
                                          {"role": "user", "content": "third"}]
    assert fields["messages"]["tuned"] == [{"role": "user", "content": "second"},
                                           {"role": "assistant", "content": "t2"},
                                           {"role": "user", "content": "third"}]


def test_a_request_that_fails_as_a_whole_and_a_gone_worker_end_every_open_reply():
    t = Transcript()
    t.ask("a", ["base", "tuned"])
    changed = t.apply({"type": "error", "id": "1", "message": "bad", "kind": "config"})
    assert [r.side for r in changed] == ["base", "tuned"] and not t.busy
    assert t.apply({"type": "token", "id": "1", "side": "base", "text": "late"}) == []  # finished stays finished
    t.ask("b", ["base"])
    t.apply({"type": "token", "id": "2", "side": "base", "text": "par"})
    (reply,) = t.fail_pending("The chat worker ended.")
    assert reply.failed and reply.text == "par" and reply.error == "The chat worker ended." and not t.busy
    assert t.apply({"type": "token", "id": "99", "side": "base", "text": "x"}) == []  # not ours


def test_sides_are_checked():
    with pytest.raises(ValueError):
        Transcript().ask("x", ["left"])


def test_without_history_each_question_is_asked_alone():
    t = Transcript()
    t.ask("first", ["tuned"])
    _finish(t, "1", "tuned", "t1")
    _, fields = t.ask("second", ["tuned"], keep_history=False)
    assert fields["messages"]["tuned"] == [{"role": "user", "content": "second"}]
