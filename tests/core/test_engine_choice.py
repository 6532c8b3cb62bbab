"""Engine choices are typed values with one home for the setting that overrides each."""

from __future__ import annotations

import pytest

from studio.core.config import RunConfig
from studio.core.engine_choice import SETTINGS, Choice, choices_from_json


@pytest.mark.parametrize("key,path", sorted(SETTINGS.items()))
def test_every_override_names_a_real_setting(key, path):
    section, _, field = path.partition(".")
    assert field in RunConfig.model_fields[section].annotation.model_fields, path


def test_a_choice_round_trips_and_learns_its_setting():
    choice = Choice("off", "auto: lengths are even").for_key("group_by_length")
    assert choice.setting == "training.group_by_length" and not choice.on and choice.automatic
    assert Choice.from_json("group_by_length", choice.to_json()) == choice
    assert choice.text() == "off (auto: lengths are even)"
    assert not Choice("on", "set in the config").automatic


def test_unreadable_records_give_no_choices():
    assert choices_from_json(None) == {} and choices_from_json(["x"]) == {}
    assert choices_from_json({"loss": "chunked (auto)"})["loss"] == Choice("chunked", "auto", "training.loss_impl")
