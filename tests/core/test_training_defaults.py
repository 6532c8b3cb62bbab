"""Training settings that suit a model or a method, from their one home in core (no Qt)."""

from __future__ import annotations

from types import SimpleNamespace

from studio.core.config import RunConfig, demo_config
from studio.core.training_defaults import scaled_lr, suggested_settings


def test_settings_follow_the_model_size_and_context():
    small = suggested_settings(SimpleNamespace(max_position_embeddings=32768, num_params=5e8), is_demo=False)
    assert small == {"training.max_seq_len": 2048, "training.batch_size": 4, "training.learning_rate": 2e-4,
                     "training.epochs": 1.0}
    big = suggested_settings(SimpleNamespace(max_position_embeddings=512, num_params=7e10), is_demo=False)
    assert big["training.max_seq_len"] == 512 and big["training.batch_size"] == 1
    assert suggested_settings(None, is_demo=False)["training.max_seq_len"] == 2048  # nothing known: the usual
    assert suggested_settings(None, is_demo=True)["training.max_steps"] == demo_config().training.max_steps


def test_a_learning_rate_moves_with_the_methods_recommended_rates():
    from studio.core.methods import method_class

    base = RunConfig().replace("training.learning_rate", 1e-4)
    ratio = method_class("ia3").recommended_lr / method_class("lora").recommended_lr
    assert scaled_lr(base, "ia3") == float(f"{min(1e-4 * ratio, 1.0):.3g}")
    assert scaled_lr(base, "lora") == 1e-4
    assert scaled_lr(base.replace("training.learning_rate", 0.9), "ia3") == 1.0  # capped to the valid range
