"""The chat worker through its real process: streaming, the same seed twice, Stop, bad commands, adapters.

One worker serves the tests of this module (loading takes seconds); each test uses its own request
ids. The demo run (tests/worker/conftest.py) has learned the codes, so the tuned side's answers are
known while the base model's are noise.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from chat_helpers import ChatProcess

from studio.core.protocol import check_event

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the secret code of the violet lighthouse?"}]


@pytest.fixture(scope="module")
def chat(trained_demo):
    worker = ChatProcess(trained_demo)
    ready, _ = worker.until("ready", timeout=120)
    worker.ready = ready
    yield worker
    worker.close()


def _checked(events):
    for e in events:
        check_event(e["type"], {k: v for k, v in e.items() if k not in ("type", "t")})
    return events


def test_ready_says_what_was_loaded_and_which_sides_answer(chat, trained_demo):
    ready = chat.ready
    _checked([ready])
    assert ready["sides"]["base"]["available"] and ready["sides"]["tuned"]["available"]
    assert ready["mode"] == "adapter" and ready["adapter"] == "final" and ready["method"] == "lora"
    assert ready["device"] == "cpu" and ready["load_s"] > 0 and ready["template"] == "tokenizer"
    assert ready["source"] == str(trained_demo.adapter_dir)
    # chat keeps its own log; the training record is untouched
    assert (trained_demo.path / "chat" / "chat.log").is_file()
    assert not any(e["type"] == "ready" for e in trained_demo.events())


def test_both_sides_stream_tokens_before_their_reply(chat):
    chat.send("generate", id="s1", messages=QUESTION)  # sides default to both, greedy
    replies, events = chat.replies("s1", 2)
    _checked(events)
    tuned = replies["tuned"]
    assert tuned["text"] == "lantern-42" and tuned["stop_reason"] == "end" and tuned["adapter"] == "final"
    assert tuned["prompt_tokens"] > 0 and tuned["first_token_s"] > 0
    for side in ("base", "tuned"):
        tokens = [e for e in events if e["type"] == "token" and e["side"] == side]
        assert len(tokens) >= 2, side
        assert "".join(e["text"] for e in tokens) == replies[side]["text"]
        assert events.index(tokens[-1]) < events.index(replies[side])
    assert replies["base"]["text"] != "lantern-42"
    assert [e["side"] for e in events if e["type"] == "reply"] == ["base", "tuned"]


def test_the_same_seed_gives_the_same_text(chat):
    sampling = {"greedy": False, "temperature": 1.3, "top_p": 1.0, "top_k": 0, "seed": 11, "max_new_tokens": 24}
    texts = []
    for request in ("r1", "r2"):
        chat.send("generate", id=request, messages=QUESTION, sides=["base"], sampling=sampling)
        replies, _ = chat.replies(request, 1)
        texts.append(replies["base"]["text"])
    assert texts[0] == texts[1] and texts[0]
    chat.send("generate", id="r3", messages=QUESTION, sides=["base"], sampling={**sampling, "seed": 12})
    other, _ = chat.replies("r3", 1)
    assert other["base"]["text"] != texts[0]


def test_stop_ends_a_generation_mid_way_and_the_other_side_too(chat):
    chat.send("generate", id="long", messages=QUESTION, sampling={"max_new_tokens": 450})
    chat.until("token", id="long", side="base")
    chat.send("stop", id="long")
    replies, _ = chat.replies("long", 2)
    assert replies["base"]["stop_reason"] == "stopped" and 0 < replies["base"]["tokens"] < 450
    assert replies["tuned"]["stop_reason"] == "stopped" and replies["tuned"]["tokens"] == 0
    chat.send("generate", id="after-stop", messages=QUESTION, sides=["tuned"])  # the next request is not stopped
    replies, _ = chat.replies("after-stop", 1)
    assert replies["tuned"]["text"] == "lantern-42"


def test_bad_commands_are_answered_with_an_error_and_the_worker_goes_on(chat):
    chat.send_raw('{"cmd": "dance"}')
    error, _ = chat.until("error")
    assert error["kind"] == "command" and "unknown command 'dance'" in error["message"]
    chat.send_raw("not json")
    error, _ = chat.until("error")
    assert error["kind"] == "command" and "not a JSON command" in error["message"]
    chat.send_raw('{"cmd": "generate", "id": "x", "messages": [], "sampling": {"temperature": -1}}')
    error, _ = chat.until("error")
    assert error["kind"] == "command"
    chat.send("generate", id="bad-template", messages=QUESTION, sides=["tuned"], template="nonsense")
    error, _ = chat.until("error", id="bad-template")
    assert error["kind"] == "config" and "unknown chat template" in error["message"]
    replies, _ = chat.replies("bad-template", 1)
    assert replies["tuned"]["stop_reason"] == "error"
    chat.send("generate", id="alive", messages=QUESTION, sides=["tuned"])
    replies, _ = chat.replies("alive", 1)
    assert replies["tuned"]["text"] == "lantern-42"


def test_adapters_switch_over_one_base_with_the_time_measured(chat, trained_demo):
    first = trained_demo.path / "checkpoints" / "step-70"
    chat.send("load_adapter", name="step-70", path=str(first))
    switched, events = chat.until("switched")
    _checked(events)
    assert switched["adapter"] == "step-70" and switched["ms"] >= 0 and switched["load_ms"] > 0
    assert switched["adapters"] == ["final", "step-70"]
    chat.send("generate", id="a1", messages=QUESTION, sides=["tuned"])
    replies, _ = chat.replies("a1", 1)
    assert replies["tuned"]["adapter"] == "step-70"
    chat.send("set_adapter", name="final")
    switched, _ = chat.until("switched")
    assert switched["adapter"] == "final" and "load_ms" not in switched
    chat.send("set_adapter", name="nope")
    error, _ = chat.until("error")
    assert error["kind"] == "config" and "No adapter named 'nope'" in error["message"]
    chat.send("generate", id="a2", messages=QUESTION, sides=["tuned"])
    replies, _ = chat.replies("a2", 1)
    assert replies["tuned"]["text"] == "lantern-42" and replies["tuned"]["adapter"] == "final"


def test_a_missing_base_model_names_the_path_and_base_path_finds_it(trained_demo, tmp_path):
    from studio.core.paths import demo_model_dir
    from studio.core.runs import Run

    moved = tmp_path / "moved-model"
    shutil.copytree(demo_model_dir(), moved)
    run = Run(tmp_path / "run")
    shutil.copytree(trained_demo.path, run.path, ignore=shutil.ignore_patterns("checkpoints", "chat", "eval"))
    cfg = yaml.safe_load(run.config_path.read_text())
    cfg["model"] = {"source": "local", "path": str(tmp_path / "was-here")}
    run.config_path.write_text(yaml.safe_dump(cfg))

    lost = ChatProcess(run)
    error, _ = lost.until("error", timeout=120)
    assert error["kind"] == "model" and error["path"] == str(tmp_path / "was-here")
    assert "not at" in error["message"] and "--base-path" in error["message"]
    done, _ = lost.until("done")
    assert done["status"] == "failed" and lost.close() == 1

    found = ChatProcess(run, "--base-path", str(moved))
    ready, _ = found.until("ready", timeout=120)
    assert ready["model"] == str(moved)
    found.send("generate", id="1", messages=QUESTION, sides=["tuned"])
    replies, _ = found.replies("1", 1)
    assert replies["tuned"]["text"] == "lantern-42"
    found.send("quit")
    done, _ = found.until("done")
    assert done["status"] == "completed" and found.close() == 0
