"""The worker line protocol: encode/decode, plain lines, version mismatch, torn files."""

from __future__ import annotations

import pytest

from studio.core.protocol import PREFIX, ProtocolError, decode, encode, encode_json, make_event, read_events


def test_encode_decode_round_trip():
    ev = make_event("plan", total_steps=3, epochs=1, steps_per_epoch=3, train_rows=9, val_rows=0, trainable_params=1,
                    total_params=2, device="cpu", precision="fp32", choices={"a": {"value": "b", "reason": ""}})
    line = encode(ev)
    assert line.startswith(PREFIX) and "\n" not in line
    assert decode(line + "\n") == ev


def test_plain_lines_are_log():
    assert decode("Loading weights: 100%") is None
    assert decode("") is None


def test_a_different_protocol_version_is_loud():
    with pytest.raises(ProtocolError, match="protocol 2"):
        decode('@@studio/2 {"type":"hello","t":1}')


def test_broken_payloads_raise():
    with pytest.raises(ProtocolError):
        decode("@@studio/1 {not json")
    with pytest.raises(ProtocolError):
        decode('@@studio/1 [1, 2]')


def test_unknown_event_types_are_refused():
    with pytest.raises(ProtocolError):
        make_event("stepp")


def test_tensor_like_values_are_serialised():
    class Scalar:
        def item(self):
            return 0.5

    assert '"val_loss":0.5' in encode_json(make_event("eval", step=1, val_loss=Scalar()))


def test_read_events_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(encode_json(make_event("hello", pid=1, version="0", argv=[])) + "\n" + '{"type":"step","lo')
    assert [e["type"] for e in read_events(path)] == ["hello"]
    assert read_events(tmp_path / "missing.jsonl") == []
