"""Every figure the estimator and the parameter counts give on a fixed matrix, as JSON (CPU, seconds).

A refactor of studio/core/vram or studio/core/methods that must not change behaviour is checked by
writing this before and after and comparing the two files: every grid row re-scored
(benchmarks/vram_rescore.py), every method variant x catalog model x checkpointing x length x
recipe x adapter compute (the whole Estimate: peaks, phases, breakdown, notes), training-setting
variants (optimizers, precisions, losses, packing, presets, compile, offload), the 'auto'
decisions, the Planner table, suggestions and fit limits, and each variant's trainable-parameter
count. Every machine-dependent input is stated (no calibration file, the allocator and the fused
kernels given), so the file is the same on any machine.

Usage:
    python benchmarks/vram_fingerprint.py OUT.json
    python benchmarks/vram_fingerprint.py --compare BEFORE.json AFTER.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024 ** 3
MODELS = ("Llama-3.2-1B", "Qwen2.5-0.5B", "Phi-3-mini-4k-instruct", "gemma-3-1b-pt", "gemma-2-2b", "Qwen3-30B-A3B")

METHODS: dict[str, dict[str, Any]] = {
    "lora": {"name": "lora"},
    "lora_qv_r8": {"name": "lora", "r": 8, "target_modules": ["q_proj", "v_proj"]},
    "lora_paths": {"name": "lora", "r": 8, "target_modules": ["self_attn.q_proj", "mlp.down_proj"]},
    "lora_missing": {"name": "lora", "target_modules": ["c_attn", "q_proj"]},
    "lora_patterns": {"name": "lora", "r": 8, "rank_pattern": "down_proj=32, layers\\.0\\..*=4",
                      "alpha_pattern": "down_proj=64"},
    "lora_dropout": {"name": "lora", "dropout": 0.1, "target_modules": ["q_proj", "k_proj", "up_proj"]},
    "qlora": {"name": "qlora"},
    "qlora8": {"name": "qlora", "bits": 8},
    "qlora_nodq_fp32": {"name": "qlora", "double_quant": False, "compute_dtype": "fp32"},
    "dora": {"name": "dora"},
    "qdora": {"name": "qdora", "r": 8},
    "loraplus": {"name": "loraplus"},
    "adalora": {"name": "adalora"},
    "adalora_qk": {"name": "adalora", "init_r": 16, "target_r": 4, "target_modules": ["q_proj", "k_proj"]},
    "qr_sensitivity": {"name": "qr_adaptor"},
    "qr_table": {"name": "qr_adaptor", "allocation": "table", "layer_ranks": "0-3=8, 5=0", "bf16_layers": "0, 1"},
    "ia3": {"name": "ia3"},
    "ia3_list": {"name": "ia3", "target_modules": ["q_proj", "up_proj", "down_proj"]},
    "ia3_ff": {"name": "ia3", "target_modules": ["k_proj", "up_proj", "down_proj"],
               "feedforward_modules": ["up_proj", "down_proj"]},
    "ia3_paths": {"name": "ia3", "target_modules": ["self_attn.k_proj", "mlp.down_proj"]},
    "vblora": {"name": "vblora"},
    "vblora_small": {"name": "vblora", "r": 4, "num_vectors": 64, "vector_length": 64},
    "waveft": {"name": "waveft"},
    "waveft_q": {"name": "waveft", "n_frequency": 1000, "target_modules": ["q_proj"]},
    "prompt_tuning": {"name": "prompt_tuning"},
    "prompt_tuning_30": {"name": "prompt_tuning", "num_virtual_tokens": 30},
    "p_tuning": {"name": "p_tuning"},
    "p_tuning_lstm": {"name": "p_tuning", "encoder_type": "LSTM", "encoder_hidden_size": 128},
    "prefix": {"name": "prefix_tuning"},
    "prefix_projection": {"name": "prefix_tuning", "prefix_projection": True, "encoder_hidden_size": 128},
    "llama_adapter": {"name": "llama_adapter"},
    "full": {"name": "full"},
    "freeze": {"name": "freeze"},
    "freeze_emb_head": {"name": "freeze", "trainable_layers": 3, "train_embeddings": True, "train_head": True},
    "freeze_head": {"name": "freeze", "train_head": True},
    "galore": {"name": "galore"},
    "galore_64": {"name": "galore", "rank": 64},
    "lisa": {"name": "lisa"},
    "lisa_4": {"name": "lisa", "active_layers": 4},
}

TRAINING_VARIANTS: dict[str, dict[str, Any]] = {
    "adamw_8bit": {"optimizer": "adamw_8bit"},
    "paged_8bit": {"optimizer": "paged_adamw_8bit"},
    "sgd": {"optimizer": "sgd"},
    "fp16": {"precision": "fp16"},
    "fp32": {"precision": "fp32"},
    "standard_loss": {"loss_impl": "standard"},
    "accum4": {"grad_accum": 4},
    "compile_on": {"compile": "on"},
    "memory_saver": {"preset": "memory_saver", "gradient_checkpointing": "auto"},
    "offload_on": {"gradient_checkpointing": "on", "offload_checkpoints": "on"},
    "cpu": {"device": "cpu", "compile": "on"},
    "eager": {"attn": "eager"},
}


def _config(method: dict[str, Any], **training: Any) -> Any:
    from studio.core.config import RunConfig

    c = RunConfig().replace("method", method)
    packing = training.pop("packing", None)
    if packing is not None:
        c = c.replace("data.packing", packing)
    attn = training.pop("attn", None)
    if attn is not None:
        c = c.replace("model.attn_implementation", attn)
    for k, v in training.items():
        c = c.replace(f"training.{k}", v)
    return c


def _machine_kwargs(expandable: bool, fused: bool, overheads: Any = None) -> tuple[dict[str, Any], Any]:
    """Keyword arguments that state the machine, for the estimator before and after it took a Machine."""
    from studio.core.vram import STUDIO, Overheads

    ov = overheads or Overheads()
    try:
        from studio.core.vram.machine import Machine
    except ImportError:  # before the estimator took a Machine: what it looked up, patched
        import studio.core.vram.setup as setup

        setup.liger_installed = lambda: fused  # type: ignore[attr-defined]
        setup.worker_uses_expandable_segments = lambda: expandable  # type: ignore[attr-defined]
        return {"overheads": ov}, STUDIO
    return {"machine": Machine(overheads=ov, expandable_segments=expandable, fused_kernels=fused)}, STUDIO


def _est(e: Any) -> dict[str, Any]:
    d = e.to_dict()
    d["saved_activations"] = e.saved_activations
    d["seq"] = e.setup.seq
    d["autocast"] = e.setup.autocast
    d["compiled"] = e.setup.compiled
    d["fused_kernels"] = e.setup.fused_kernels
    d["expandable"] = e.setup.expandable
    return d


def grid_rows() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import vram_rescore

    out: dict[str, Any] = {}
    for folder in sorted((ROOT / "benchmarks" / "results").glob("vram-*")):
        path = folder / "results.json"
        if not path.exists():
            continue
        for r in vram_rescore.load_rows([str(path)]):
            s = vram_rescore.rescore_row(r)
            out[f"{folder.name}/{s['id']}"] = {k: s[k] for k in ("est_allocated", "est_reserved", "est_phase")}
    return out


def matrix() -> tuple[dict[str, Any], dict[str, Any]]:
    from studio.core.methods.params import trainable_params
    from studio.core.models import catalog_facts
    from studio.core.vram import STUDIO, estimate, hf_peft_recipe

    estimates: dict[str, Any] = {}
    counts: dict[str, Any] = {}
    for model in MODELS:
        facts = catalog_facts(model)
        for key, method in METHODS.items():
            base = _config(method)
            counts[f"{model}/{key}"] = trainable_params(base.method, facts)
            for recipe_name in ("studio", "studio_fused_fixed", "hf_peft", "hf_peft_noprep"):
                kw, recipe = _machine_kwargs(expandable=recipe_name == "studio", fused=recipe_name != "studio")
                if recipe_name.startswith("hf_peft"):
                    recipe = hf_peft_recipe(kbit_prep=recipe_name == "hf_peft")
                for gc in ("on", "off"):
                    for seq in (512, 4096):
                        for compute in ("auto", "fp32"):
                            if recipe_name.startswith("hf_peft") and compute == "auto":
                                continue
                            c = _config(method, gradient_checkpointing=gc, max_seq_len=seq, batch_size=2,
                                        adapter_compute=compute, compile="off")
                            e = estimate(c, facts, recipe=recipe, **kw)
                            estimates[f"{model}/{key}/{recipe_name}/gc-{gc}/s{seq}/{compute}"] = _est(e)
        for key in ("lora", "qlora", "dora", "ia3", "prompt_tuning", "full", "galore", "freeze_emb_head", "lisa"):
            for variant, training in TRAINING_VARIANTS.items():
                kw, recipe = _machine_kwargs(expandable=True, fused=False)
                training = {"gradient_checkpointing": "on", "max_seq_len": 1024, "batch_size": 4, "compile": "off",
                            **training}
                c = _config(METHODS[key], **training)
                for budget in (None, 24 * GIB):
                    e = estimate(c, facts, recipe=recipe, budget_bytes=budget, **kw)
                    estimates[f"{model}/{key}/variant-{variant}/budget-{budget}"] = _est(e)
            for gc_budget in (8, 24, 80):
                kw, recipe = _machine_kwargs(expandable=True, fused=True)
                c = _config(METHODS[key], gradient_checkpointing="auto", max_seq_len=2048, batch_size=4,
                            packing=True)
                e = estimate(c, facts, recipe=recipe, budget_bytes=gc_budget * GIB, **kw)
                estimates[f"{model}/{key}/auto-gc/packing/{gc_budget}GiB"] = _est(e)
    return estimates, counts


def planning() -> dict[str, Any]:
    from studio.core.models import catalog_facts
    from studio.core.vram import resolve_auto
    from studio.core.vram.plan import gpu_fits, plan_table
    from studio.core.vram.suggest import fit_limits, suggest

    out: dict[str, Any] = {}
    kw, recipe = _machine_kwargs(expandable=True, fused=False)
    for model in ("Llama-3.2-1B", "Qwen2.5-7B"):
        facts = catalog_facts(model)
        out[f"plan/{model}"] = plan_table(facts, 24 * GIB, recipe=recipe, **kw).to_dict()
        for key in ("lora", "qlora", "dora", "loraplus", "full", "ia3", "galore"):
            c = _config(METHODS[key], max_seq_len=4096, batch_size=8, gradient_checkpointing="auto",
                        loss_impl="standard", adapter_compute="fp32")
            for budget in (12, 24, 48):
                b = budget * GIB
                auto = resolve_auto(c, facts, b, recipe=recipe, **kw)
                out[f"auto/{model}/{key}/{budget}"] = [auto.gradient_checkpointing, auto.loss_impl, auto.reason]
                out[f"suggest/{model}/{key}/{budget}"] = [
                    [s.title, s.changes, s.cost_rank, s.device_used, s.saves, s.fits]
                    for s in suggest(c, facts, b, recipe=recipe, **kw)]
                lim = fit_limits(c, facts, b, recipe=recipe, **kw)
                out[f"limits/{model}/{key}/{budget}"] = [lim.max_batch, lim.max_seq_len]
            out[f"gpus/{model}/{key}"] = [[g.gpu.name, g.device_used, g.fits]
                                          for g in gpu_fits(c, facts, recipe=recipe, **kw)]
    return out


def fingerprint() -> dict[str, Any]:
    grid = grid_rows()  # first: before the estimator took a Machine, nothing was patched yet
    estimates, counts = matrix()
    return {"grid": grid, "estimates": estimates, "counts": counts, "planning": planning()}


def compare(before: dict[str, Any], after: dict[str, Any]) -> int:
    differ = 0
    for section in before:
        b, a = before[section], after.get(section, {})
        same = sum(1 for k in b if k in a and a[k] == b[k])
        changed = [k for k in b if k in a and a[k] != b[k]]
        gone = [k for k in b if k not in a]
        new = [k for k in a if k not in b]
        print(f"{section}: {len(b)} before, {len(a)} after, {same} identical, {len(changed)} changed, "
              f"{len(gone)} gone, {len(new)} new")
        for k in changed + gone:
            differ += 1
            print(f"  {k}: {_short(b.get(k))} -> {_short(a.get(k))}")
    return 1 if differ else 0


def _short(v: Any) -> str:
    if isinstance(v, dict) and "peak_allocated" in v:
        return f"alloc {v['peak_allocated']} reserved {v['peak_reserved']} trainable {v['trainable_params']}"
    text = json.dumps(v)
    return text if len(text) < 160 else text[:157] + "..."


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+")
    p.add_argument("--compare", action="store_true", help="compare two files written before")
    args = p.parse_args()
    if args.compare:
        before, after = (json.loads(Path(x).read_text()) for x in args.paths)
        return compare(before, after)
    Path(args.paths[0]).write_text(json.dumps(fingerprint(), indent=0, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
