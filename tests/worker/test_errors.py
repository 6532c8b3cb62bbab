"""Failures become an error kind and a message that says what to change."""

from __future__ import annotations

import errno

import torch

from studio.core.config import ConfigError, demo_config
from studio.core.data import DataError
from studio.worker.errors import ModelLoadError, classify


def test_out_of_memory_says_what_to_change():
    cfg = demo_config().replace("training.max_seq_len", 2048).replace("training.batch_size", 8)
    kind, msg = classify(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), cfg)
    assert kind == "oom"
    for hint in ("checkpointing", "Micro-batch from 8 to 4", "Max length from 2048", "QLoRA"):
        assert hint in msg
    assert classify(RuntimeError("CUDA error: out of memory"), None)[0] == "oom"


def test_user_problems_keep_their_kind():
    assert classify(DataError("rows.jsonl:3: bad"), None) == ("data", "rows.jsonl:3: bad")
    assert classify(ModelLoadError("no config.json"), None)[0] == "model"
    assert classify(ConfigError("training.x: bad"), None)[0] == "config"


def test_a_full_disk_names_the_path():
    kind, msg = classify(OSError(errno.ENOSPC, "No space left on device", "/runs/x/adapter.tmp/w.safetensors"), None)
    assert kind == "disk" and "/runs/x/adapter.tmp" in msg


def test_anything_else_is_internal():
    assert classify(KeyError("boom"), None)[0] == "internal"
