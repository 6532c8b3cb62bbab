"""Training settings that suit a model or a method: the one home of these rules of thumb.

``suggested_settings`` sizes the training settings to a model (the Model page applies them when
the user picks a model); ``scaled_lr`` carries a learning rate over to another method (the Method
page when the user switches method, and every comparison, in the GUI and in `studio compare`).

The CLI does not apply ``suggested_settings``: `studio train run.yaml` trains the config as
written, and a config always states its training settings (or takes TrainingSpec's defaults), so
overriding them would contradict the file. In the GUI they are the consequence of an explicit
choice (picking a model), shown in the form at once and editable before Train.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from studio.core.config import RunConfig
    from studio.core.models import ModelFacts


def suggested_settings(facts: Optional["ModelFacts"], is_demo: bool) -> dict[str, Any]:
    """Dotted config paths -> values for the chosen model (``facts`` None: nothing is known about it)."""
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


def scaled_lr(base: "RunConfig", name: str) -> float:
    """The base's learning rate moved by the ratio of the two methods' recommended rates.

    The user's rate carries their calibration for this model and data (a tiny model wants a
    larger rate than an 8B one); the ratio carries what differs between methods (IA3 ~15x LoRA,
    full fine-tuning ~1/20). Capped to the config's valid range.
    """
    from studio.core.methods import method_class

    ratio = method_class(name).recommended_lr / type(base.method).recommended_lr
    return float(f"{min(base.training.learning_rate * ratio, 1.0):.3g}")
