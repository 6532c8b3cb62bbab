"""The chat worker's parts in this process: out of memory mid-chat, streaming decode, base vs tuned switching."""

from __future__ import annotations

import threading

import pytest
import torch

from studio.core.chat import parse_command
from studio.core.config import demo_config
from studio.core.protocol import check_event

QUESTION = [{"role": "user", "content": "What is the secret code of the amber mill?"}]


class Events:
    """The reporter interface ChatSession uses, keeping the events (checked against the protocol)."""

    stdout_alive = True

    def __init__(self):
        self.events = []

    def emit(self, type_, **payload):
        check_event(type_, payload)
        self.events.append({"type": type_, **payload})

    def log(self, line):
        pass

    def of(self, type_):
        return [e for e in self.events if e["type"] == type_]


def _generate(request, **fields):
    import json

    return parse_command(json.dumps({"cmd": "generate", "id": request, "messages": QUESTION, **fields}))


@pytest.fixture(scope="module")
def session(trained_demo):
    from studio.worker.chat import ChatSession
    from studio.worker.inference import load_for_inference, resolve_target

    loaded = load_for_inference(resolve_target(trained_demo.path))
    return ChatSession(loaded, Events())


def test_out_of_memory_is_explained_and_the_chat_goes_on(session, monkeypatch):
    from studio.worker.chat import OOM_ADVICE

    session.rep = rep = Events()
    calls = {"n": 0}
    real = type(session.loaded.model).generate

    def generate(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(session.loaded.model), "generate", generate)
    session.handle(_generate("big", sides=["tuned"]))
    error = rep.of("error")[0]
    assert error["kind"] == "oom" and error["message"] == OOM_ADVICE and error["id"] == "big"
    assert "traceback" not in error or error["traceback"] is None
    assert rep.of("reply")[0]["stop_reason"] == "error"
    session.handle(_generate("next", sides=["tuned"]))
    assert rep.of("reply")[-1]["text"] == "wheel-17"


def test_a_stop_for_a_queued_request_answers_it_as_stopped(session):
    session.rep = rep = Events()
    session.stop("later")
    session.handle(_generate("later"))
    assert [(e["side"], e["stop_reason"], e["tokens"]) for e in rep.of("reply")] == [
        ("base", "stopped", 0), ("tuned", "stopped", 0)]
    session.handle(_generate("fresh", sides=["tuned"]))
    assert rep.of("reply")[-1]["text"] == "wheel-17"


def test_a_custom_jinja_template_is_used_for_the_prompt(session):
    session.rep = rep = Events()
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    session.handle(_generate("custom", sides=["tuned"], template=template))
    assert rep.of("reply")[-1]["text"] == "wheel-17"  # the demo's own template, written out: same answer
    session.handle(_generate("broken", sides=["tuned"], template="{% for m in messages %}{{ m['role'] }}{% endfor %}"))
    assert "leaves out the text" in rep.of("error")[-1]["message"]


def test_streamed_text_never_splits_a_character():
    from transformers import AutoTokenizer

    from studio.core.paths import demo_model_dir
    from studio.worker.generation import TextStream

    tok = AutoTokenizer.from_pretrained(str(demo_model_dir()))
    text = "héllo wörld — 你好, ok 🙂 done"
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) > len(text) // 2  # byte-level pieces: several tokens hold parts of one character
    pieces = []
    stream = TextStream(tok, pieces.append)
    stream.put(torch.tensor([[1, 2]]))  # the prompt comes first and is not answer text
    for i in ids:
        stream.put(torch.tensor([i]))
    stream.end()
    assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
    assert len(pieces) > 5


def test_a_stop_marker_in_the_text_ends_the_answer_before_it():
    from transformers import AutoTokenizer

    from studio.core.paths import demo_model_dir
    from studio.worker.generation import TextStream

    tok = AutoTokenizer.from_pretrained(str(demo_model_dir()))
    pieces = []
    stream = TextStream(tok, pieces.append, stop_texts=("### Instruction",))
    stream.put(torch.tensor([[1]]))
    for i in tok.encode("lantern-42\n\n### Instruction: more", add_special_tokens=False):
        stream.put(torch.tensor([i]))
    stream.end()
    assert "".join(pieces) == "lantern-42\n\n" and stream.hit_stop_text


def test_full_parameter_weights_swap_with_the_base_values_exactly(tmp_path, monkeypatch):
    """Freeze-tuning: the base side is the untouched base, the tuned side the trained model, both ways."""
    from worker_helpers import make_run

    from studio.worker import train as train_module
    from studio.worker.inference import load_for_inference, resolve_target
    from studio.worker.modeling import load_model, resolve_placement
    from studio.worker.reporter import Reporter

    monkeypatch.setattr(Reporter, "install_signal_handlers", lambda self: None)
    cfg = demo_config().replace("method", {"name": "freeze", "trainable_layers": 1})
    for key, value in {"max_steps": 3, "eval_steps": 0, "learning_rate": 1e-2}.items():
        cfg = cfg.replace(f"training.{key}", value)
    run = make_run(tmp_path, cfg)
    assert train_module.main(run.path) == 0
    loaded = load_for_inference(resolve_target(run.path))
    assert loaded.mode == "swap" and loaded.side_status()["base"]["available"]
    ids = torch.tensor([[4, 50, 60, 70, 80]])
    base, _ = load_model(cfg, resolve_placement(cfg))
    with torch.no_grad():
        plain = base(input_ids=ids).logits
        outputs = {}
        for side in ("tuned", "base", "tuned", "base"):
            with loaded.side(side) as model:
                outputs.setdefault(side, []).append(model(input_ids=ids).logits)
    assert torch.equal(outputs["base"][0], plain) and torch.equal(outputs["base"][1], plain)
    assert torch.equal(outputs["tuned"][0], outputs["tuned"][1])
    assert not torch.equal(outputs["tuned"][0], plain)


def test_a_soft_prompt_adapter_switches_off_for_the_base_side(tmp_path):
    """Prompt tuning adds virtual tokens; inside disable_adapter the base answers exactly as without it."""
    from studio.core.runs import RunStore
    from studio.worker.generation import stream_reply
    from studio.worker.inference import load_for_inference, resolve_target
    from studio.worker.methods import runtime_for
    from studio.worker.modeling import load_model, resolve_placement
    from studio.core.chat import Sampling

    cfg = demo_config().replace("method", {"name": "prompt_tuning", "num_virtual_tokens": 4})
    run = RunStore(tmp_path / "runs").create(cfg)
    runtime = runtime_for(cfg)
    model = runtime.wrap(load_model(cfg, resolve_placement(cfg))[0])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.normal_(0, 1.0)
    run.adapter_dir.mkdir()
    runtime.save(model, run.adapter_dir)
    loaded = load_for_inference(resolve_target(run.path))
    base, _ = load_model(cfg, resolve_placement(cfg))
    base.config.use_cache = True
    prompt = [4, 50, 60, 70, 80]
    sampling = Sampling(max_new_tokens=6)
    never = threading.Event()
    answers = {}
    for side in ("base", "tuned"):
        with loaded.side(side) as m:
            answers[side] = stream_reply(m, loaded.tokenizer, prompt, sampling, lambda _t: None, never).text
    plain = stream_reply(base.eval(), loaded.tokenizer, prompt, sampling, lambda _t: None, never).text
    assert answers["base"] == plain and answers["tuned"] != plain


def test_a_plain_model_answers_alone_until_an_adapter_is_loaded_over_it(trained_demo):
    from studio.core.paths import demo_model_dir
    from studio.worker.chat import ChatSession
    from studio.worker.inference import load_for_inference, resolve_target

    loaded = load_for_inference(resolve_target(model=str(demo_model_dir())))
    assert loaded.mode == "plain" and not loaded.side_status()["tuned"]["available"]
    session = ChatSession(loaded, Events())
    session.handle(_generate("plain"))  # no sides given: every side there is
    assert [e["side"] for e in session.rep.of("reply")] == ["base"]
    session.handle(parse_command('{"cmd": "load_adapter", "name": "demo", "path": "%s"}' % trained_demo.adapter_dir))
    assert session.rep.of("switched")[-1]["adapter"] == "demo" and loaded.side_status()["tuned"]["available"]
    session.handle(_generate("both"))
    replies = [e for e in session.rep.of("reply") if e["id"] == "both"]
    assert [e["side"] for e in replies] == ["base", "tuned"] and replies[1]["text"] == "wheel-17"


def test_auto_chats_in_the_template_the_run_trained_with(session, trained_demo, tmp_path, monkeypatch):
    import shutil

    import studio.core.data.render as render
    import studio.worker.inference as inference
    from studio.core.runs import Run
    from studio.worker.chat import ChatSession

    folder = tmp_path / "alpaca-run"
    shutil.copytree(trained_demo.path, folder, ignore=shutil.ignore_patterns("checkpoints", "chat"))
    Run(folder).config().replace("data.template", "alpaca").save(folder / "config.yaml")
    monkeypatch.setattr(inference, "load_for_inference", lambda target, log=print: session.loaded)
    used = []
    real = render.render_prompt
    monkeypatch.setattr(render, "render_prompt", lambda conv, tok, template, *a: used.append(template) or
                        real(conv, tok, template, *a))
    chat = ChatSession.load(Events(), run_dir=str(folder))
    chat.announce(0.1)
    assert chat.rep.of("ready")[0]["template"] == "alpaca"
    chat.handle(_generate("auto", sides=["base"], template="auto"))
    chat.handle(_generate("default", sides=["base"]))
    chat.handle(_generate("named", sides=["base"], template="chatml"))
    assert used == ["alpaca", "alpaca", "chatml"]
