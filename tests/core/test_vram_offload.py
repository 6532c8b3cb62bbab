"""Offloaded checkpoints in the estimate: the worker's rule decides when, and then every layer's
checkpointed input but the one being recomputed leaves the GPU."""

from __future__ import annotations

from studio.core.config import RunConfig
from studio.core.models import catalog_facts
from studio.core.vram import GIB, Machine, Overheads, budget_for, estimate, estimate_recipes, hf_peft_recipe
from studio.core.vram.setup import resolve_setup
from studio.core.vram.suggest import suggest

LLAMA8 = catalog_facts("Llama-3.1-8B")
MACHINE = Machine(Overheads())  # the reference machine, stated


def saver(**training) -> RunConfig:
    """Llama-3.1-8B LoRA r16 all-linear (the default method), 4 x 1024, memory-saver, on a GPU."""
    c = RunConfig()
    for k, v in {"batch_size": 4, "max_seq_len": 1024, "preset": "memory_saver", "device": "cuda",
                 **training}.items():
        c = c.replace(f"training.{k}", v)
    return c


def test_offload_takes_all_checkpoints_but_one_off_the_gpu():
    on = estimate(saver(), LLAMA8, machine=MACHINE)
    off = estimate(saver(offload_checkpoints="off"), LLAMA8, machine=MACHINE)
    assert on.setup.offload and on.setup.gc and not off.setup.offload
    checkpoint = 2 * LLAMA8.hidden_size * 4 * 1024  # one layer's bf16 input: 32 MiB
    assert checkpoint == 32 * 2 ** 20
    gone = (LLAMA8.num_layers - 1) * checkpoint  # 31 x 32 MiB
    assert off.saved_activations - on.saved_activations == gone
    for phase in ("loss", "backward_start"):  # the instants that hold the checkpoints
        assert off.phases[phase] - on.phases[phase] == gone
    assert on.phases["backward_end"] == off.phases["backward_end"] and on.phases["step"] == off.phases["step"]
    assert on.peak_allocated == max(on.phases.values()) < off.peak_allocated
    pinned = next(n for n in on.notes if n.startswith("checkpoints offloaded to CPU memory"))
    assert "~1.1 GiB of pinned RAM" in pinned  # 32 checkpoints + the final norm's fp32 input
    assert not any("offloaded" in n for n in off.notes)
    assert on.to_dict()["offload_checkpoints"] is True


def test_offload_follows_the_workers_rule():
    assert resolve_setup(saver(), LLAMA8).offload  # 'auto' under the memory-saver preset
    assert not resolve_setup(saver(preset="fastest", gradient_checkpointing="on"), LLAMA8).offload
    assert resolve_setup(saver(preset="fastest", gradient_checkpointing="on", offload_checkpoints="on"), LLAMA8).offload
    # never without checkpointing, never on the CPU
    assert not resolve_setup(saver(gradient_checkpointing="off", offload_checkpoints="on"), LLAMA8).offload
    assert not resolve_setup(saver(device="cpu", offload_checkpoints="on"), LLAMA8).offload


def test_the_plain_hf_recipe_never_offloads():
    c = saver(offload_checkpoints="on")
    assert not resolve_setup(c, LLAMA8, recipe=hf_peft_recipe(kbit_prep=False)).offload
    both = estimate_recipes(c, LLAMA8, machine=MACHINE)
    assert both["studio"].setup.offload and not both["hf_peft_noprep"].setup.offload


def test_offload_is_suggested_after_checkpointing_when_it_helps():
    c = saver(preset="fastest", gradient_checkpointing="on")
    need = estimate(c, LLAMA8, machine=MACHINE)
    budget = need.device_used - int(0.5 * GIB)  # half a GiB short: offloading saves ~0.9 GiB
    sugs = suggest(c, LLAMA8, budget, machine=MACHINE)
    offload = next(s for s in sugs if s.changes == {"training.offload_checkpoints": "on"})
    assert offload.fits and offload.cost_rank == 2 and offload.title == "Offload checkpoints to CPU memory"
    assert offload.saves == need.device_used - estimate(c.replace("training.offload_checkpoints", "on"), LLAMA8,
                                                        machine=MACHINE).device_used
    ranks = [s.cost_rank for s in sugs if s.cost_rank <= 5]
    assert ranks == sorted(ranks)
    # Without checkpointing, checkpointing comes first and offloading is not offered on its own.
    plain = saver(preset="fastest", gradient_checkpointing="off")
    small = budget_for(int(24 * GIB))
    sugs = suggest(plain, LLAMA8, small, machine=MACHINE)
    assert any(s.changes == {"training.gradient_checkpointing": "on"} for s in sugs)
    assert not any(s.changes == {"training.offload_checkpoints": "on"} for s in sugs)
    # Already offloading, or training on the CPU: nothing to offer.
    for done in (saver(), saver(device="cpu", offload_checkpoints="off")):
        short = estimate(done, LLAMA8, machine=MACHINE).device_used - GIB
        offers = suggest(done, LLAMA8, short, machine=MACHINE)
        assert not any("training.offload_checkpoints" in s.changes for s in offers)


def test_the_estimate_follows_the_workers_cost_rule():
    """Llama-3.2-1B at 4 x 1024 keeps its checkpoints on the GPU under the memory saver (copies
    would cost ~22% of a step); Llama-3.1-8B offloads them."""
    from studio.core.config import RunConfig
    from studio.core.models import catalog_facts
    from studio.core.vram import estimate

    c = RunConfig()
    for k, v in (("preset", "memory_saver"), ("batch_size", 4), ("max_seq_len", 1024), ("device", "cuda")):
        c = c.replace(f"training.{k}", v)
    assert estimate(c, catalog_facts("Llama-3.1-8B")).setup.offload is True
    assert estimate(c, catalog_facts("Llama-3.2-1B")).setup.offload is False
    assert estimate(c.replace("training.offload_checkpoints", "on"), catalog_facts("Llama-3.2-1B")).setup.offload
