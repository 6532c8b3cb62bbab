"""The checkpoint-offload choice reads as words and names the setting that overrides it."""

from __future__ import annotations

from studio.ui.widgets.engine_choices import override_hint, split_choice, title_of


def test_checkpoint_offload_has_a_title_and_its_override():
    assert title_of("checkpoint_offload") == "Checkpoint offload"
    assert override_hint("checkpoint_offload") == "Change it with “Offload checkpoints” (Method page, Training)."
    value, reason = split_choice("off (needs gradient checkpointing)")
    assert (value, reason) == ("off", "needs gradient checkpointing")
