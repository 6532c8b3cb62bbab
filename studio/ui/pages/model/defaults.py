"""Training defaults that suit the chosen model (applied when the model changes)."""

from __future__ import annotations

from typing import Any


def suggested_settings(facts: Any, is_demo: bool) -> dict[str, Any]:
    """Dotted config paths -> values for the chosen model."""
    if is_demo:  # the settings the demo was tuned with (studio.core.config.demo_config)
        from studio.core.config import demo_config

        return {f"training.{k}": v for k, v in demo_config().training.model_dump(mode="json").items()}
    out: dict[str, Any] = {}
    ctx = int(getattr(facts, "max_position_embeddings", 0) or 0)
    # 2048 tokens covers most instruction data; longer only if the model supports it and the user asks.
    out["training.max_seq_len"] = max(8, min(2048, ctx)) if ctx else 2048
    params = int(getattr(facts, "num_params", 0) or 0)
    out["training.batch_size"] = 4 if params < 3e9 else 2 if params < 15e9 else 1
    out["training.learning_rate"] = 2e-4
    out["training.epochs"] = 1.0
    return out
