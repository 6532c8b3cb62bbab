"""The checkpoint-offload choice reads as words and names the setting that overrides it."""

from __future__ import annotations

from studio.core.engine_choice import Choice, title_of
from studio.ui.widgets.engine_choices import override_hint


def test_checkpoint_offload_has_a_title_and_its_override():
    choice = Choice.from_json("checkpoint_offload", {"value": "off", "reason": "needs gradient checkpointing"})
    assert title_of("checkpoint_offload") == "Checkpoint offload"
    assert choice.setting == "training.offload_checkpoints"
    assert override_hint(choice) == "Change it with “Offload checkpoints” (Method page, Training)."
