"""ConfigModel: the one RunConfig the pages edit, with validation at the point of entry.

Every widget writes through ``set(dotted_path, value)``; the value is applied only if
``RunConfig.replace`` accepts it, otherwise the message is published for that field and the
current config stays as it was. Views listen to ``sig_config_changed`` and never read each other.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from studio.core.config import ConfigError, DataSpec, ModelSpec, RunConfig, TrainingSpec, describe_validation_error
from studio.core.methods import method_class


class ConfigModel(QObject):
    sig_config_changed = Signal(object)  # the new RunConfig
    sig_field_error = Signal(str, str)  # dotted path, message ("" = the field is valid again)

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._config = config or RunConfig()
        self._errors: dict[str, str] = {}

    @property
    def config(self) -> RunConfig:
        return self._config

    def get(self, path: str) -> Any:
        node: Any = self._config
        for key in path.split("."):
            node = getattr(node, key)
        return node

    def errors(self) -> dict[str, str]:
        """Fields whose last edit was rejected, with the reason."""
        return dict(self._errors)

    def error_lines(self, paths: Optional[Iterable[str]] = None) -> list[str]:
        """The rejected fields as a person finds them: "Learning rate (Method page): must be greater than 0"."""
        wanted = None if paths is None else set(paths)
        return [f"{self.field_label(path)}: {message}" for path, message in self._errors.items()
                if wanted is None or path in wanted]

    def field_label(self, path: str) -> str:
        """A dotted field path as the form labels it, with the page it is on."""
        section, _, name = path.partition(".")
        owner: Any = {"training": TrainingSpec, "data": DataSpec, "model": ModelSpec,
                      "method": type(self._config.method)}.get(section)
        if owner is None:  # a top-level field (name, output_dir)
            owner, name = RunConfig, path
        info = getattr(owner, "model_fields", {}).get(name)
        title = (info.title if info is not None and info.title else name.replace("_", " ").capitalize())
        page = {"data": "Data", "model": "Model"}.get(section, "Method")
        return f"{title} ({page} page)"

    def set(self, path: str, value: Any) -> bool:
        """Apply one field if valid; otherwise publish the reason for that field. Returns success."""
        try:
            new = self._config.replace(path, value)
        except (ValidationError, ConfigError, ValueError) as e:
            self._set_error(path, _message_for(path, e))
            return False
        self._set_error(path, "")
        if new != self._config:
            self._config = new
            self.sig_config_changed.emit(new)
        return True

    def update(self, values: dict[str, Any]) -> bool:
        """Apply several fields at once (all or nothing), e.g. model source and path together."""
        data = self._config.to_dict()
        for path, value in values.items():
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
        try:
            new = RunConfig.from_dict(data)
        except (ValidationError, ConfigError, ValueError) as e:
            for path in values:
                self._set_error(path, _message_for(path, e))
            return False
        for path in values:
            self._set_error(path, "")
        self.replace_config(new)
        return True

    def reject(self, path: str, message: str) -> None:
        """Publish why an edit a widget checked itself was not applied ("" = it is fine again), as ``set`` does for
        the config's own checks: the field shows it and Train refuses to start until it is fixed. For editors that
        check more than the config can, e.g. a chat template against the model's own special tokens."""
        self._set_error(path, message)

    def set_method(self, name: str) -> None:
        """Switch method, carrying over the fields the old and new method share (rank, alpha...)."""
        if self._config.method.name == name:
            return
        cls = method_class(name)
        old_fields = type(self._config.method).model_fields
        old = self._config.method.model_dump()
        # Same name and same type means the same knob (LoRA's rank in DoRA); IA3's target_modules
        # means other layers than LoRA's, so it starts from its own default.
        shared = {k: v for k, v in old.items() if k != "name" and k in cls.model_fields
                  and cls.model_fields[k].annotation == old_fields[k].annotation}
        try:
            method = cls(**shared)
        except ValidationError:
            method = cls()
        self.set("method", method.model_dump(mode="json"))

    def replace_config(self, config: RunConfig) -> None:
        """Adopt a whole config (loading a past run's config, model-specific defaults)."""
        if config != self._config:
            self._config = config
            self.sig_config_changed.emit(config)

    def _set_error(self, path: str, message: str) -> None:
        if self._errors.get(path, "") == message:
            return
        if message:
            self._errors[path] = message
        else:
            self._errors.pop(path, None)
        self.sig_field_error.emit(path, message)


def _message_for(path: str, err: Exception) -> str:
    """The validation message without the field path, which the form already shows as a label."""
    text = describe_validation_error(err) if isinstance(err, ValidationError) else str(err)
    parts = []
    for part in text.split("; "):
        loc, sep, msg = part.partition(": ")
        if sep and (loc == path or path.endswith(loc) or loc.endswith(path.rsplit(".", 1)[-1])):
            parts.append(msg)
        else:
            parts.append(part)
    return "; ".join(parts)
