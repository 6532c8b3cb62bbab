"""RunConfig: the one typed description of a fine-tuning run.

The GUI form binds to it field by field, the VRAM estimator reads it, it is written into the run
directory as ``config.yaml``, and the worker and the CLI take it. Invalid values are rejected here,
with messages that name the field (``training.learning_rate: must be > 0``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from studio.core.methods import LoraMethod, MethodConfig

SCHEMA_VERSION = 1

DEMO = "demo"  # the value of ModelSpec.source / DataSpec.source that selects the embedded demo


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(_Section):
    source: Literal["demo", "local", "hub"] = Field(
        "demo", title="Source",
        description="The embedded demo model, a local Hugging Face folder (or one in the HF cache), or a hub id.")
    path: str = Field("", title="Model",
                      description="Folder holding config.json and weights, or a hub id such as Qwen/Qwen2.5-0.5B.")
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit); hub ids only.")
    trust_remote_code: bool = Field(False, title="Trust remote code",
                                    description="Run Python code shipped with the model. Only for models you trust.")
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", title="Attention", description="Attention kernel. 'auto' picks SDPA (PyTorch's fused attention).")

    @model_validator(mode="after")
    def _path_required(self) -> "ModelSpec":
        if self.source != "demo" and not self.path.strip():
            raise ValueError("path: choose a model folder or enter a hub id")
        return self


DataFormat = Literal["auto", "alpaca", "sharegpt", "messages", "prompt_completion", "text"]
FORMAT_TITLES = {"alpaca": "Alpaca (instruction / input / output)", "sharegpt": "ShareGPT (conversations: from/value)",
                 "messages": "OpenAI messages (role/content)", "prompt_completion": "Prompt / completion",
                 "text": "Raw text (continued pre-training)"}


def _is_jinja(text: str) -> bool:
    # render.is_jinja's rule; the data package is not imported to validate a config
    return "{{" in text or "{%" in text


@lru_cache(maxsize=32)
def template_problem(source: str) -> str:
    """Why a custom chat template cannot train ("" when it can), by the renderer's own check.

    Cached: a config is validated on every edit in the GUI, and compiling Jinja each time is wasted.
    """
    from studio.core.data.render import check_template

    return check_template(source)


class DataSpec(_Section):
    source: Literal["demo", "file", "hub"] = Field("demo", title="Source")
    path: str = Field("", title="Dataset", description="A .jsonl/.json/.csv/.tsv/.parquet/.txt file, a folder, or a hub dataset id.")
    format: DataFormat = Field("auto", title="Shape",
                               description="Shape of the rows. 'auto' detects it and shows the evidence.",
                               json_schema_extra={"choice_labels": {"auto": "Detect automatically", **FORMAT_TITLES}})
    column_map: dict[str, str] = Field(default_factory=dict, title="Column mapping",
                                       description="Your column -> studio field, e.g. question -> instruction.")
    subset: Optional[str] = Field(None, description="Hub dataset configuration (subset), hub ids only.")
    split: str = Field("train", description="Split to train on (hub datasets and save_to_disk folders).")
    template: Literal["auto", "chatml", "alpaca", "llama3", "custom"] = Field(
        "auto", title="Chat template",
        description="How turns become text: 'auto' uses the tokenizer's own chat template, else ChatML; "
                    "'custom' uses the Jinja template in chat_template (for a base model that has none).",
        json_schema_extra={"choice_labels": {"auto": "The model's own (else ChatML)", "chatml": "ChatML",
                                             "alpaca": "Alpaca", "llama3": "Llama 3", "custom": "Custom…"}})
    chat_template: str = Field(
        "", title="Custom chat template",
        description="A Jinja chat template, written as a tokenizer's chat_template is; used when the chat template "
                    "is 'custom', for preview, training, chat and export alike.")
    train_on: Literal["completion", "all"] = Field(
        "completion", title="Train on",
        description="'completion': loss only on answers/assistant turns (recommended). 'all': on every token.",
        json_schema_extra={"choice_labels": {"completion": "Answers only (recommended)", "all": "Every token"}})
    add_eos: bool = Field(True, title="End each example with EOS",
                          description="End every example with the tokenizer's end-of-sequence token so the model learns to stop.")
    validation_split: float = Field(0.0, ge=0.0, le=0.5, title="Validation share",
                                    description="Share of rows held out to measure validation loss (0 = none).",
                                    json_schema_extra={"percent": True})
    validation_path: str = Field("", title="Validation file", description="A separate validation file (overrides the share).")
    shuffle_seed: int = Field(42, ge=0, title="Shuffle seed")
    dedup: bool = Field(True, title="Drop exact duplicates")
    packing: bool = Field(False, title="Pack short examples into full sequences",
                          description="Concatenate short examples into full-length sequences to waste no compute on padding.")
    max_rows: Optional[int] = Field(None, ge=1, description="Use only the first N rows (for quick trials).")

    @model_validator(mode="before")
    @classmethod
    def _jinja_in_template(cls, data: Any) -> Any:
        # A Jinja text given as the template (`--set data.template=...`, a hand-written config) is a custom one.
        if isinstance(data, dict) and isinstance(data.get("template"), str) and _is_jinja(data["template"]):
            data = {**data, "template": "custom", "chat_template": data["template"]}
        return data

    @field_validator("chat_template")
    @classmethod
    def _custom_template_renders(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("template") == "custom":
            if not v.strip():
                raise ValueError("write a Jinja chat template for 'custom', or choose a named template")
            problem = template_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _path_required(self) -> "DataSpec":
        if self.source != "demo" and not self.path.strip():
            raise ValueError("path: choose a dataset file or enter a hub dataset id")
        return self

    @property
    def effective_template(self) -> str:
        """What the renderer takes (studio.core.data.render): a template name, or for 'custom' its Jinja text."""
        return self.chat_template if self.template == "custom" else self.template


class TrainingSpec(_Section):
    learning_rate: float = Field(2e-4, gt=0, le=1.0, title="Learning rate",
                                 description="Peak learning rate. 1e-4 to 3e-4 suits LoRA; full fine-tuning wants ~1e-5.")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", title="Schedule", description="How the learning rate changes after warm-up.")
    warmup_ratio: float = Field(0.03, ge=0.0, le=0.5, title="Warm-up share",
                                description="Share of steps spent ramping the learning rate up from 0.")
    epochs: float = Field(1.0, gt=0, le=1000, title="Epochs", description="Passes over the training data (ignored when Max steps > 0).")
    max_steps: int = Field(0, ge=0, title="Max steps", description="Stop after this many optimizer steps; 0 = use Epochs.")
    batch_size: int = Field(4, ge=1, le=4096, title="Micro-batch",
                            description="Examples per forward pass. Larger is faster until memory runs out.")
    grad_accum: int = Field(1, ge=1, le=4096, title="Gradient accumulation",
                            description="Micro-batches summed per optimizer step; effective batch = micro-batch x this.")
    max_seq_len: int = Field(1024, ge=8, le=1_048_576, title="Max length",
                             description="Longest example in tokens; longer ones are truncated (the data page shows how many).")
    gradient_checkpointing: Literal["auto", "on", "off"] = Field(
        "auto", title="Gradient checkpointing",
        description="Recompute activations in the backward pass: much less memory, ~20-30% slower. 'auto' turns it on only when needed.")
    offload_checkpoints: Literal["auto", "on", "off"] = Field(
        "auto", title="Offload checkpoints",
        description="Keep checkpointed activations in CPU memory instead of the GPU: less GPU memory, a little "
                    "slower. 'auto' does it under the memory-saver preset.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", title="Precision", description="'auto': bf16 on GPUs that support it, fp16 on older GPUs, fp32 on the CPU.")
    optimizer: Literal["adamw", "adamw_8bit", "paged_adamw_8bit", "sgd"] = Field(
        "adamw", title="Optimizer", description="AdamW is the standard; the 8-bit variants (bitsandbytes) store its state in a quarter of the memory.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, title="Weight decay")
    max_grad_norm: float = Field(1.0, ge=0.0, title="Gradient clipping", description="Clip the gradient norm to this (0 = off).")
    loss_impl: Literal["auto", "standard", "chunked"] = Field(
        "auto", title="Loss", description="'chunked' computes cross-entropy in slices so full fp32 logits never exist; 'auto' picks it.")
    memory_limit_gb: float = Field(
        0.0, ge=0.0, le=4096.0, title="GPU memory limit (GB)",
        description="The most GPU memory this run may use, e.g. to leave room for other work on the card; "
                    "'auto' choices fit under it and the worker enforces it. 0 = the GPU's free memory minus a margin.")
    preset: Literal["fastest", "memory_saver"] = Field(
        "fastest", title="Engine preset",
        description="'fastest': checkpointing only when memory requires it. 'memory_saver': checkpointing always on, "
                    "checkpoints kept in CPU memory where that costs little, for the smallest peak memory at some speed.")
    compile: Literal["auto", "on", "off"] = Field(
        "auto", title="Compile layers",
        description="torch.compile each decoder layer (CUDA): faster steps after a compile of under a minute. "
                    "'auto' compiles runs long enough to repay it.")
    group_by_length: Literal["auto", "on", "off"] = Field(
        "auto", title="Group by length",
        description="Batch examples of similar length together so little compute goes to padding. "
                    "'auto' does it when lengths vary.")
    adapter_compute: Literal["auto", "fp32"] = Field(
        "auto", title="Adapter compute",
        description="'auto': adapters compute in the model's precision (bf16/fp16) and keep fp32 master weights. "
                    "'fp32': PEFT's default, inputs cast to fp32 for every adapter (slower, more memory).")
    seed: int = Field(42, ge=0, le=2**32 - 1, title="Seed", description="Seeds weights of new layers, shuffling and dropout, for reproducible runs.")
    logging_steps: int = Field(1, ge=1, title="Log every", description="Report loss every N optimizer steps.")
    eval_steps: int = Field(0, ge=0, title="Evaluate every", description="Validation loss every N steps (0 = at the end only).")
    save_steps: int = Field(0, ge=0, title="Checkpoint every",
                            description="Save a resumable checkpoint every N steps (0 = by time only, see Checkpoint minutes).")
    save_minutes: float = Field(
        10.0, ge=0, le=1440, title="Checkpoint minutes",
        description="Also save a resumable checkpoint after this many minutes of training, so a crash loses at most "
                    "that much (0 = off). Slow-to-write checkpoints are spaced out to keep saving under ~5% of the time.")
    device: Literal["auto", "cuda", "cpu"] = Field("auto", title="Device")


class RunConfig(_Section):
    """Everything that defines a run. ``schema_version`` lets later versions migrate old files."""

    schema_version: int = SCHEMA_VERSION
    name: str = Field("run", min_length=1, max_length=80, title="Run name")
    output_dir: str = Field("", title="Output folder",
                            description="Where run folders are created; empty = the studio's runs folder.")
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    method: MethodConfig = Field(default_factory=LoraMethod)
    training: TrainingSpec = Field(default_factory=TrainingSpec)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        bad = set('/\\:*?"<>|') & set(v)
        if bad:
            raise ValueError(f"may not contain {''.join(sorted(bad))}")
        return v.strip()

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        return cls.model_validate(migrate(data))

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """Read a YAML or JSON config; raises ConfigError with field-level messages."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from e
        except RecursionError:
            raise ConfigError(f"{p}: not a config (nested too deeply to read)") from None
        if data is None:
            raise ConfigError(f"{p}: the file is empty. A config names at least the model and the data; the Method "
                              "page's 'Show config / CLI' button writes one, and `studio train --demo` needs none.")
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except ValidationError as e:
            raise ConfigError(f"{p}: " + describe_validation_error(e)) from e
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None

    def with_absolute_paths(self, base: Optional[Path] = None) -> "RunConfig":
        """A copy whose folders and files are absolute (relative ones taken from ``base``, default the cwd).

        The worker runs in the run folder, so a path the user meant relative to where they typed it
        must be fixed before the run is created; the run's config.yaml then means the same anywhere.
        """
        base = Path(base or Path.cwd())

        def absolute(raw: str) -> str:
            return str((base / Path(raw).expanduser()).resolve()) if raw.strip() else raw

        data = self.to_dict()
        data["output_dir"] = absolute(data["output_dir"])
        if self.model.source == "local":
            data["model"]["path"] = absolute(data["model"]["path"])
        if self.data.source == "file":
            data["data"]["path"] = absolute(data["data"]["path"])
        data["data"]["validation_path"] = absolute(data["data"]["validation_path"])
        return RunConfig.from_dict(data)

    def replace(self, dotted: str, value: Any) -> "RunConfig":
        """A copy with one field changed by dotted path (``training.batch_size``), validated."""
        data = self.to_dict()
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        if dotted == "method.name" and value != node.get("name"):
            # Another method: keep the settings it shares (lora -> dora keeps r and alpha), drop
            # the ones it does not have, so `--set method.name=full` works on a LoRA config.
            from studio.core.methods import method_class, method_names

            if value in method_names():
                fields = method_class(value).model_fields
                node = data["method"] = {k: v for k, v in node.items() if k in fields}
        node[leaf] = value
        return RunConfig.from_dict(data)


class _Dumper(yaml.SafeDumper):
    """Multi-line text (a custom chat template) as a readable block, not one quoted line of \\n escapes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


class ConfigError(ValueError):
    """A config that cannot be used; the message is meant for the user as it is."""


def describe_validation_error(err: ValidationError) -> str:
    """Turn pydantic's error list into lines like ``training.batch_size: must be >= 1``."""
    lines = []
    for e in err.errors():
        parts = [str(p) for p in e["loc"] if not _is_union_tag(p)]
        loc = ".".join(parts)
        msg = e["msg"].replace("Input should be", "must be").replace("Value error, ", "")
        if e["type"] == "extra_forbidden":
            tags = [str(p) for p in e["loc"] if _is_union_tag(p)]
            msg = "no such setting" + _did_you_mean(parts, tags[0] if tags else None)
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def _did_you_mean(parts: list[str], method: Optional[str] = None) -> str:
    """'; did you mean learning_rate?' for a misspelt field (or '' when nothing is close)."""
    import difflib

    from studio.core.methods import METHOD_CLASSES, method_class

    sections: dict[str, Any] = {"model": ModelSpec, "data": DataSpec, "training": TrainingSpec}
    if len(parts) == 1:
        known = set(RunConfig.model_fields)
    elif parts[0] == "method":
        classes = [method_class(method)] if method else METHOD_CLASSES
        known = {f for cls in classes for f in cls.model_fields}
    elif parts[0] in sections:
        known = set(sections[parts[0]].model_fields)
    else:
        return ""
    close = difflib.get_close_matches(parts[-1], sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the discriminator value (e.g. 'lora') into the location of union members.
    from studio.core.methods import method_names

    return isinstance(part, str) and part in method_names()


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade an older config dict to SCHEMA_VERSION (no older versions exist yet)."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"schema_version: must be a whole number such as {SCHEMA_VERSION}, not {version!r}")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"this config was written by a newer studio (schema {version}; this one reads up to {SCHEMA_VERSION})")
    return {**data, "schema_version": SCHEMA_VERSION}


def demo_config() -> RunConfig:
    """The settings the GUI and ``studio train --demo`` use for the embedded demo.

    The demo model (resources/demo, built by resources/build_demo.py) is a tiny random-init Llama
    and its dataset teaches 240 "secret codes". These settings make LoRA learn them on a laptop CPU
    in well under a minute: a high learning rate (the adapter starts from nothing and the run is
    short), many short epochs over a small batch, and a 10% validation split so the validation
    curve shows the rule generalising. Greedy generation then answers nearly every question.
    """
    return RunConfig(
        name="demo",
        model=ModelSpec(source="demo"),
        data=DataSpec(source="demo", validation_split=0.1),
        method=LoraMethod(r=16, alpha=32.0, target_modules="all-linear"),
        training=TrainingSpec(learning_rate=3e-3, lr_scheduler="cosine", warmup_ratio=0.05, epochs=15,
                              batch_size=16, grad_accum=1, max_seq_len=64, logging_steps=5,
                              eval_steps=50, device="auto", precision="auto"),
    )
