"""QR-Adaptor-style per-layer plan: a rank and quantized-or-bf16 for every decoder layer.

The plan comes from the user's tables or from ``nf4_sensitivity``: a data-free pass that reads
each layer's weights from the checkpoint's safetensors files (one tensor at a time, before the
model is loaded), simulates bitsandbytes' NF4 block quantization (blocks of 64, absmax scaling)
and measures the relative squared error per layer. See studio/core/methods/qr_adaptor.py for what
this does and does not share with the paper.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional

from studio.core.methods.qr_adaptor import allocate_from_sensitivity
from studio.worker.methods import register
from studio.worker.methods.lora import LoraRuntime

NF4_LEVELS = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
              -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
              0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
              0.7229568362236023, 1.0)
_LAYER_RE = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")


def nf4_error(weight: Any, block: int = 64) -> tuple[float, float]:
    """(squared error, squared norm) of NF4 block quantization of a weight matrix."""
    import torch

    w = weight.float().flatten()
    pad = (-w.numel()) % block
    if pad:
        w = torch.cat([w, w.new_zeros(pad)])
    blocks = w.view(-1, block)
    scale = blocks.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    levels = torch.tensor(NF4_LEVELS, dtype=torch.float32)
    mids = (levels[1:] + levels[:-1]) / 2
    q = levels[torch.bucketize(blocks / scale, mids)] * scale
    return float(((blocks - q) ** 2).sum()), float((blocks ** 2).sum())


def nf4_sensitivity(folder: Path, num_layers: int) -> list[float]:
    """Relative NF4 error of each decoder layer's 2-D weights, read straight from safetensors."""
    from safetensors import safe_open

    err = [0.0] * num_layers
    norm = [0.0] * num_layers
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder} has no .safetensors files to measure")
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            for key in fh.keys():
                m = _LAYER_RE.search(key)
                if not m or not key.endswith(".weight") or int(m.group(1)) >= num_layers:
                    continue
                shape = fh.get_slice(key).get_shape()
                if len(shape) != 2:
                    continue
                e, n = nf4_error(fh.get_tensor(key))
                err[int(m.group(1))] += e
                norm[int(m.group(1))] += n
    return [e / n if n else 0.0 for e, n in zip(err, norm)]


@register("qr_adaptor")
class QrAdaptorRuntime(LoraRuntime):
    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self.plan: Optional[dict[str, Any]] = None

    def _num_layers(self) -> int:
        from transformers import AutoConfig

        from studio.worker.modeling import model_location

        c = AutoConfig.from_pretrained(model_location(self.cfg), trust_remote_code=self.cfg.model.trust_remote_code)
        c = c.get_text_config() if hasattr(c, "get_text_config") else c
        return int(c.num_hidden_layers)

    def make_plan(self, num_layers: Optional[int] = None, weights_folder: Optional[Path] = None) -> dict[str, Any]:
        if self.plan is not None:
            return self.plan
        m = self.method
        n = num_layers if num_layers is not None else self._num_layers()
        if m.allocation == "table":
            ranks, bf16, errors = m.rank_table(n), [i for i in m.bf16_set() if i < n], None
        else:
            folder = weights_folder or _weights_folder(self.cfg)
            errors = nf4_sensitivity(folder, n)
            ranks, bf16 = allocate_from_sensitivity(errors, m.r, m.bf16_layer_count)
            print("QR-Adaptor sensitivity (relative NF4 error per layer): "
                  + ", ".join(f"{i}:{e:.4f}" for i, e in enumerate(errors)), flush=True)
        self.plan = {"ranks": ranks, "bf16_layers": bf16, "nf4_error": errors, "allocation": m.allocation}
        print(f"QR-Adaptor plan: ranks {ranks}; bf16 layers {bf16}", flush=True)
        return self.plan

    def skip_modules(self) -> Optional[list[str]]:
        plan = self.make_plan()
        # transformers matches these as regexes from the start of a module name, up to a dot.
        return ["lm_head"] + [rf".*\.layers\.{i}" for i in plan["bf16_layers"]]

    def layer_plan(self) -> tuple[dict[str, int], Optional[str]]:
        plan = self.make_plan()
        ranks = {rf"layers\.{i}\..*": r for i, r in plan["ranks"].items() if r > 0}
        none = [str(i) for i, r in plan["ranks"].items() if r == 0]
        exclude = rf".*\.layers\.({'|'.join(none)})\..*" if none else None
        return ranks, exclude

    def save(self, model: Any, out_dir: Path) -> None:
        super().save(model, out_dir)
        if self.plan is not None:
            (Path(out_dir) / "qr_adaptor_plan.json").write_text(json.dumps(self.plan, indent=1), encoding="utf-8")


def _weights_folder(cfg: Any) -> Path:
    from studio.worker.modeling import model_location

    location = model_location(cfg)
    if Path(location).is_dir():
        return Path(location)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, revision=cfg.model.revision, local_files_only=True,
                                      allow_patterns=["*.safetensors", "*.json"]))
    except Exception as e:
        raise ValueError(f"QR-Adaptor's sensitivity pass needs the model's .safetensors files on disk ({e}); "
                         "download the model first or set Allocation to Table.") from e
