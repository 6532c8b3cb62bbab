"""ComparePage: methods run one after another through WorkerProcess; table, curves, stop, history."""

from __future__ import annotations

import pytest

from studio.core.compare import comparison_runs
from studio.core.config import RunConfig
from studio.core.runs import RunStore
from studio.ui.config_model import ConfigModel
from studio.ui.pages.compare.page import ComparePage


@pytest.fixture
def page(qtbot, tmp_path, fake_worker):
    p = ComparePage(ConfigModel(RunConfig(name="cmp")), store_root=tmp_path / "runs", stop_timeout_s=5,
                    has_cuda=False, has_bitsandbytes=False, preflight=lambda cfg: [])
    qtbot.addWidget(p)
    return p


def _pick(page, names):
    for name, box in page.method_boxes.items():
        box.setChecked(name in names)


def test_methods_run_one_after_another_and_fill_the_table(page, qtbot, tmp_path, fake_worker):
    fake_worker(steps=4, step_s=0.02)
    _pick(page, {"lora", "ia3", "prompt_tuning"})
    page.steps_spin.setValue(4)
    with qtbot.waitSignal(page.sig_comparison_finished, timeout=30_000) as done:
        cid = page.start_comparison()
        assert cid and not page.compare_button.isEnabled()
    assert done.args == [cid, "completed"]
    page._on_redraw_timer_timeout()
    rows = page.rows()
    assert [r.method for r in rows] == ["lora", "ia3", "prompt_tuning"]
    assert all(r.state == "completed" and r.final_loss is not None for r in rows)
    assert page.curves.curve_count() == 3
    store = RunStore(tmp_path / "runs")
    runs = comparison_runs(store, cid)
    assert [r.config().training.max_steps for r in runs] == [4, 4, 4]
    assert page.table_model.rowCount() == 3 and page.table_model.data(page.table_model.index(0, 0)) == "LoRA"
    assert page.history_combo.findData(cid) >= 0


def test_stop_ends_the_comparison_and_drops_unstarted_runs(page, qtbot, tmp_path, fake_worker):
    fake_worker(mode="until_stop", steps=1000, step_s=0.02)
    _pick(page, {"lora", "dora", "ia3"})
    page.start_comparison()
    qtbot.waitUntil(lambda: page._events and any(e.get("type") == "step" for ev in page._events.values() for e in ev),
                    timeout=15_000)
    with qtbot.waitSignal(page.sig_comparison_finished, timeout=20_000) as done:
        page.stop()
    assert done.args[1] == "stopped"
    assert len(RunStore(tmp_path / "runs").list()) == 1  # only the run that had started is kept
    assert page.compare_button.isEnabled()


def test_unavailable_methods_are_disabled_with_the_reason(page):
    box = page.method_boxes["qlora"]
    assert not box.isEnabled() and "CUDA" in box.toolTip()
    assert "qlora" not in page.selected_methods()
    assert page.param_labels["qlora"].text() == "unavailable"


def test_nothing_picked_or_preflight_problems_block_the_start(qtbot, tmp_path, fake_worker):
    p = ComparePage(ConfigModel(RunConfig()), store_root=tmp_path / "runs", has_cuda=False, has_bitsandbytes=False,
                    preflight=lambda cfg: ["the data file is empty"] if cfg.method.name == "ia3" else [])
    qtbot.addWidget(p)
    _pick(p, set())
    assert p.start_comparison() is None and "at least one" in p.banner.text()
    assert not p.compare_button.isEnabled()
    _pick(p, {"lora", "ia3"})
    assert p.start_comparison() is None
    assert "IA3: the data file is empty" in p.banner.text()
    assert not (tmp_path / "runs").exists() or not RunStore(tmp_path / "runs").list()


def test_a_problem_every_method_shares_is_said_once(qtbot, tmp_path, fake_worker):
    """A model that is not downloaded is one problem, not one per method (issue #13 walk)."""
    config = RunConfig().replace("model", {"source": "hub", "path": "someone/not-downloaded"})
    p = ComparePage(ConfigModel(config), store_root=tmp_path / "runs", has_cuda=False, has_bitsandbytes=False)
    qtbot.addWidget(p)
    _pick(p, {"lora", "ia3", "dora"})
    assert p.start_comparison() is None
    text = p.banner.text()
    assert text.count("someone/not-downloaded is not downloaded") == 1 and "LoRA:" not in text


def test_demo_model_facts_give_parameter_counts(page):
    from studio.core.methods.params import trainable_params
    from studio.core.models import resolve_facts

    facts = resolve_facts("demo", "")
    page.set_model_facts(facts)
    from studio.core.methods import method_class

    expected = trainable_params(method_class("ia3")(), facts)
    assert page.param_labels["ia3"].text() == str(expected)
