"""A tiny Llama on disk, a learnable task and a minimal training loop that drives MethodRuntime hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

VOCAB = 64


def build_tiny_llama(folder: Path, layers: int = 2) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


def task_batch(batch: int = 4, length: int = 24) -> torch.Tensor:
    """Counting sequences mod 16 from random starts: next token = previous + 1, easy to learn."""
    g = torch.Generator().manual_seed(1)
    start = torch.randint(0, 16, (batch, 1), generator=g)
    return 3 + (start + torch.arange(length)) % 16


def load_base(folder: Path) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.config.use_cache = False
    return model


def loss_of(model: Any, runtime: Any, x: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=x).logits[:, runtime.logits_offset():]
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


def logits_of(model: Any, runtime: Any, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=x).logits[:, runtime.logits_offset():].float()


def train(model: Any, runtime: Any, x: torch.Tensor, steps: int) -> list[float]:
    """The worker loop's order: backward, the method's penalty, clip, optimizer step, zero_grad, on_step_end."""
    optimizer = runtime.make_optimizer(model)
    model.train()
    losses = []
    for step in range(1, steps + 1):
        loss = loss_of(model, runtime, x)
        loss.backward()
        penalty = runtime.penalty(model)
        if penalty is not None:
            penalty.backward()
        torch.nn.utils.clip_grad_norm_(runtime.trainable_parameters(model), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        runtime.on_step_end(model, step, steps)
        losses.append(float(loss.detach()))
    return losses
