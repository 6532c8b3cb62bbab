"""Causal-LM cross-entropy, standard or chunked.

``standard`` runs the whole model and takes cross-entropy over the full logits, upcast to fp32:
for a 150k-token vocabulary that is 600 KB per token, often the biggest tensor in a LoRA step.

``chunked`` stops at the final hidden states, keeps only the positions that carry loss (with
completion-only training most of the prompt drops out) and computes logits, loss and the gradient
slice by slice, so full fp32 ``[tokens x vocab]`` logits never exist. Gradients are computed in the
forward pass (as Liger's fused linear cross-entropy does) and replayed in backward.

Both return the SUM of token losses; the loop divides by the loss tokens of the whole optimizer
step, so gradient accumulation weighs every token equally.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from studio.core.engine_choice import Choice
from studio.core.engine_rules import chunk_rows

IGNORE_INDEX = -100


def unwrap(model: Any) -> Any:
    """The transformers CausalLM inside a PEFT wrapper (LoRA layers stay injected)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def chunked_unsupported(model: Any) -> str:
    """Why the chunked loss cannot reproduce this model's loss exactly ('' when it can)."""
    peft_cfg = getattr(model, "active_peft_config", None)
    if peft_cfg is not None and getattr(peft_cfg, "is_prompt_learning", False):
        return "prompt-learning methods add virtual tokens in the PEFT forward"
    hf = unwrap(model)
    head = hf.get_output_embeddings() if hasattr(hf, "get_output_embeddings") else None
    if type(head) is not torch.nn.Linear:
        return "the output layer is not a plain linear layer (trained or wrapped)"
    if head.bias is not None:
        return "the output layer has a bias"
    cfg = hf.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    for attr in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale"):
        value = getattr(text_cfg, attr, None)
        if value not in (None, 1, 1.0):
            return f"the model scales its logits ({attr})"
    if getattr(text_cfg, "output_router_logits", False):
        return "the model adds a router auxiliary loss"
    if not hasattr(hf, "base_model") or hf.base_model is hf:
        return "the model has no separate decoder body"
    return ""


def resolve_loss_impl(setting: str, model: Any) -> tuple[str, Choice]:
    """('standard'|'chunked', the choice) for the config's loss_impl."""
    why_not = chunked_unsupported(model)
    if setting == "standard":
        return "standard", Choice("standard", "set in the config")
    if why_not:
        return "standard", Choice("standard", why_not)
    if setting == "chunked":
        return "chunked", Choice("chunked", "set in the config")
    return "chunked", Choice("chunked", "auto: full fp32 logits never exist; loss positions only")


def loss_sum(model: Any, batch: Any, impl: str, logits_offset: int = 0) -> Any:
    """Summed token cross-entropy of one micro-batch (an fp32 scalar tensor).

    ``logits_offset``: positions a soft-prompt method prepends to the logits (standard path only).
    """
    if impl == "chunked":
        return chunked_loss_sum(model, batch)
    return standard_loss_sum(model, batch, logits_offset)


def standard_loss_sum(model: Any, batch: Any, logits_offset: int = 0) -> Any:
    logits = model(**batch.model_inputs(), use_cache=False).logits
    if logits_offset:
        logits = logits[:, logits_offset:]
    # Prompt tuning / P-tuning prepend virtual-token positions to the logits; they carry no label.
    logits = logits[:, -batch.labels.shape[1]:]
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), batch.labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def chunked_loss_sum(model: Any, batch: Any) -> Any:
    hf = unwrap(model)
    hidden = hf.base_model(**batch.model_inputs(), use_cache=False).last_hidden_state
    targets = batch.labels[:, 1:].reshape(-1)
    keep = (targets != IGNORE_INDEX).nonzero().squeeze(-1)
    h = hidden[:, :-1].reshape(-1, hidden.shape[-1]).index_select(0, keep)
    weight = hf.get_output_embeddings().weight
    targets = targets.index_select(0, keep)
    if not torch.is_grad_enabled():  # evaluation: no gradients to precompute
        step = chunk_rows(weight.shape[0])
        return sum((F.cross_entropy((h[s:s + step] @ weight.T).float(), targets[s:s + step], reduction="sum")
                    for s in range(0, h.shape[0], step)), torch.zeros((), device=h.device))
    return ChunkedCrossEntropy.apply(h, weight, targets)



class ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets):  # noqa: ANN001
        # The loop may run the model under autocast; the loss keeps its own precision (fp32 logits
        # and, when the head trains, an fp32 weight gradient), exactly as without autocast.
        with torch.autocast(hidden.device.type, enabled=False):
            return ChunkedCrossEntropy._forward(ctx, hidden, weight, targets)

    @staticmethod
    def _forward(ctx, hidden, weight, targets):  # noqa: ANN001
        n = hidden.shape[0]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) \
            if ctx.needs_input_grad[1] else None
        step = chunk_rows(weight.shape[0])
        rows = torch.arange(min(step, n), device=hidden.device)
        for s in range(0, n, step):
            h = hidden[s:s + step]
            t = targets[s:s + step]
            # One fp32 slice at a time, worked on in place: the softmax and its gradient reuse the
            # logits' storage, so a slice costs its fp32 logits plus a bf16 copy, never a
            # logsumexp temporary or the previous slice's gradient (docs/vram-estimator.md).
            logits = (h @ weight.T).float()
            picked = logits.gather(1, t[:, None]).squeeze(1)
            top = logits.amax(dim=-1, keepdim=True)
            norm = logits.sub_(top).exp_().sum(dim=-1, keepdim=True)
            total += (norm.log().add_(top).squeeze(1) - picked).sum()  # logsumexp - target logit
            if need_grad:
                # d(sum CE)/d logits = softmax - one_hot
                g = logits.div_(norm)
                g[rows[:t.shape[0]], t] -= 1.0
                if grad_h is not None:
                    grad_h[s:s + step] = (g.to(weight.dtype) @ weight).to(hidden.dtype)
                if grad_w is not None:
                    grad_w += g.T @ h.float()
                del g
            del logits
        ctx.save_for_backward(grad_h if grad_h is not None else torch.empty(0),
                              grad_w if grad_w is not None else torch.empty(0))
        ctx.has = (grad_h is not None, grad_w is not None)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out):  # noqa: ANN001
        grad_h, grad_w = ctx.saved_tensors
        dh = grad_h * grad_out.to(grad_h.dtype) if ctx.has[0] else None
        dw = (grad_w * grad_out).to(ctx.weight_dtype) if ctx.has[1] else None
        return dh, dw, None
