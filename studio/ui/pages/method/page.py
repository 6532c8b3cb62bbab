"""MethodPage: choose the method and set every knob, in forms generated from the config models.

Methods this machine cannot run are shown disabled with the reason (QLoRA without CUDA). The
method's facts (what it does, when to pick it, its costs, whether it merges) sit beside its
settings, and the VRAM panel, when installed, watches the same ConfigModel on the right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from studio.core import gpu
from studio.core.config import RunConfig, TrainingSpec
from studio.core.methods import METHOD_CLASSES
from studio.core.training_defaults import scaled_lr
from studio.ui.config_model import ConfigModel
from studio.ui.widgets.card import Banner, Card, muted, page_layout, scroll_page, section_label
from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.module_picker import ModulePicker

if TYPE_CHECKING:
    from studio.core.methods.base import Availability
    from studio.core.models import ModelFacts

TRAINING_GROUPS = (
    ("Schedule", ("learning_rate", "lr_scheduler", "warmup_ratio", "epochs", "max_steps")),
    ("Batch and length", ("batch_size", "grad_accum", "max_seq_len")),
    # Forms fill column by column: the preset heads the group whose knobs it sets.
    ("Memory and speed", ("preset", "gradient_checkpointing", "offload_checkpoints", "memory_limit_gb", "precision",
                          "optimizer")),
    ("Engine", ("device", "compile", "loss_impl", "group_by_length", "adapter_compute")),
    ("Regularisation and seed", ("weight_decay", "max_grad_norm", "seed")),
    ("Logging and checkpoints", ("logging_steps", "eval_steps", "save_steps", "save_minutes")),
)

SIDE_WIDTH, SIDE_WIDTH_NARROW = 360, 300  # the memory panel beside the forms
NARROW_BELOW = 1150  # page width (a 1280 px window leaves 1072)


def short_title(title: str) -> str:
    """A method's button label: its name without the parenthesised long form ("QR-Adaptor (per-layer ...)")."""
    return title.split(" (")[0]


def _method_key(cls) -> str:
    return cls.model_fields["name"].default


class MethodPage(QWidget):
    def __init__(self, config_model: ConfigModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._module_choices: tuple[str, ...] = ()
        self._facts: Optional[ModelFacts] = None
        self._has_cuda, self._has_bnb = gpu.has_cuda_gpu(), gpu.has_bitsandbytes()
        self._availability: dict[str, Availability] = {}

        content = QWidget()
        lay = page_layout(content)
        top = QHBoxLayout()
        top.addWidget(muted("Pick how the model learns, then tune the run. Hover any label for what it does."), 1)
        show = QPushButton("Show config / CLI")
        show.setObjectName("show_config")
        show.clicked.connect(self._on_show_config_clicked)
        top.addWidget(show)
        lay.addLayout(top)
        lay.addWidget(self._build_method_card())
        self._update_availability()
        lay.addWidget(self._build_settings_card())
        lay.addWidget(self._build_training_card())
        run = Card("Run", "Where the run folder goes and what it is called.")
        self.run_form = ConfigForm(config_model, "", fields=("name", "output_dir"), path_fields=("output_dir",))
        run.body.addWidget(self.run_form)
        lay.addWidget(run)
        lay.addStretch(1)

        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(scroll_page(content), 1)
        self.vram_panel = self._make_vram_panel()
        if self.vram_panel is not None:
            side = QWidget()
            side.setObjectName("SidePanel")
            side_lay = QVBoxLayout(side)
            side_lay.setContentsMargins(0, 22, 24, 24)
            side_lay.addWidget(self.vram_panel)
            side_lay.addStretch(1)
            side.setFixedWidth(SIDE_WIDTH)
            outer.addWidget(side)
            self._side = side

        config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_config_changed(config_model.config)

    # ---- building -----------------------------------------------------------------------
    def _build_method_card(self) -> Card:
        """The method choice, grouped by family, with why a method cannot run here under its family."""
        choice = Card("Method", "Greyed-out methods cannot run on this machine or model; hover one for why.")
        self._method_group = QButtonGroup(self)
        self.method_buttons: dict[str, QPushButton] = {}
        self._reason_labels: dict[str, QLabel] = {}
        families: dict[str, list] = {}
        for cls in METHOD_CLASSES:
            families.setdefault(cls.info.family, []).append(cls)
        for family, classes in families.items():
            choice.body.addWidget(section_label(family))
            grid = QGridLayout()
            grid.setHorizontalSpacing(8)
            grid.setVerticalSpacing(8)
            for i, cls in enumerate(classes):
                grid.addWidget(self._method_button(cls), i // 4, i % 4)
            for c in range(4):
                grid.setColumnStretch(c, 1)
            choice.body.addLayout(grid)
            reasons = muted("", role="faint")
            reasons.hide()
            self._reason_labels[family] = reasons
            choice.body.addWidget(reasons)
        self._method_banner = Banner()
        choice.body.addWidget(self._method_banner)
        return choice

    def _method_button(self, cls: type) -> QPushButton:
        key = _method_key(cls)
        b = QPushButton(short_title(cls.info.title))  # the long form is in the tooltip and the info beside
        b.setProperty("choice", True)
        b.setProperty("compact", True)
        b.setCheckable(True)
        b.setObjectName(f"method_{key}")
        b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # equal columns
        # Ignored lets a column shrink below the text; the floor keeps every title whole.
        b.ensurePolished()  # the theme's font (bold) decides the width
        b.setMinimumWidth(max(90, b.fontMetrics().horizontalAdvance(b.text()) + 32))
        b.clicked.connect(lambda _=False, k=key: self._on_method_clicked(k))
        self._method_group.addButton(b)
        self.method_buttons[key] = b
        return b

    def _build_settings_card(self) -> Card:
        """The chosen method's settings beside what is known about it."""
        self._settings_card = Card("Settings")
        row = QHBoxLayout()
        row.setSpacing(24)
        self.method_form = ConfigForm(self._model, "method")
        self.method_form.sig_rebuilt.connect(self._apply_module_choices)
        row.addWidget(self.method_form, 3)
        self._info = QWidget()
        info_lay = QVBoxLayout(self._info)
        info_lay.setContentsMargins(16, 0, 0, 0)
        info_lay.setSpacing(4)
        self._info_labels: dict[str, QLabel] = {}
        for key, title in (("summary", "What it does"), ("when_to_pick", "When to pick it"), ("costs", "Costs"),
                           ("merge", "Merging")):
            info_lay.addWidget(section_label(title))
            label = muted("")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._info_labels[key] = label
            info_lay.addWidget(label)
            info_lay.addSpacing(8)
        info_lay.addStretch(1)
        row.addWidget(self._info, 2)
        self._settings_card.body.addLayout(row)
        return self._settings_card

    def _build_training_card(self) -> Card:
        """The training settings, grouped; fields added to TrainingSpec later land under "More"."""
        train = Card("Training", "Defaults follow the chosen model; everything is validated as you type.")
        self.training_forms: list[ConfigForm] = []
        grouped: set[str] = set()
        for title, names in TRAINING_GROUPS:
            train.body.addWidget(section_label(title))
            form = ConfigForm(self._model, "training", fields=names, columns=2)
            self.training_forms.append(form)
            train.body.addWidget(form)
            train.body.addSpacing(6)
            grouped.update(names)
        rest = [n for n in TrainingSpec.model_fields if n not in grouped]
        if rest:
            train.body.addWidget(section_label("More"))
            form = ConfigForm(self._model, "training", fields=rest, columns=2)
            self.training_forms.append(form)
            train.body.addWidget(form)
        return train

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        # Below ~1400 px of window the memory panel gives up some width so the forms are not clipped.
        side = getattr(self, "_side", None)
        if side is not None:
            side.setFixedWidth(SIDE_WIDTH if event.size().width() >= NARROW_BELOW else SIDE_WIDTH_NARROW)
        super().resizeEvent(event)

    def _make_vram_panel(self) -> Any:
        try:
            from studio.ui.widgets.vram_panel import VramPanel
        except ImportError:
            return None
        return VramPanel(self._model)

    # ---- slots --------------------------------------------------------------------------
    def set_model_facts(self, facts: Optional[ModelFacts]) -> None:
        """Re-check which methods suit the chosen model; offer its own module names as targets."""
        self._facts = facts
        self._module_choices = tuple(getattr(facts, "linear_modules", ()) or ())
        self._apply_module_choices()
        self._update_availability()
        self._on_config_changed(self._model.config)

    def _update_availability(self) -> None:
        by_family: dict[str, list[str]] = {}
        for cls in METHOD_CLASSES:
            key = _method_key(cls)
            avail = cls.availability(has_cuda=self._has_cuda, has_bitsandbytes=self._has_bnb, facts=self._facts)
            self._availability[key] = avail
            b = self.method_buttons[key]
            b.setEnabled(avail.ok)
            b.setToolTip(f"{cls.info.title}: {cls.info.summary if avail.ok else avail.reason}")
            if not avail.ok:
                by_family.setdefault(cls.info.family, []).append(avail.reason)
        for family, label in self._reason_labels.items():
            reasons = list(dict.fromkeys(by_family.get(family, [])))
            label.setText("\n".join(reasons))
            label.setVisible(bool(reasons))

    def _on_method_clicked(self, key: str) -> None:
        """Switch method; keep the learning rate in proportion to what each method recommends."""
        before = self._model.config
        if _method_key(type(before.method)) == key:
            return
        self._model.set_method(key)
        self._model.set("training.learning_rate", scaled_lr(before, self._model.config.method.name))

    def _apply_module_choices(self) -> None:
        method = self._model.config.method
        for name in self.method_form.field_names():
            picker = self.method_form.editor(name)
            if isinstance(picker, ModulePicker):
                if self._module_choices:
                    picker.set_choices(self._module_choices)
                picker.set_value(getattr(method, name))

    def _on_config_changed(self, config: RunConfig) -> None:
        key = config.method.name
        if key in self.method_buttons:
            self.method_buttons[key].setChecked(True)
        info = type(config.method).info
        self._settings_card.title_label.setText(f"{info.title} settings")
        self._info_labels["summary"].setText(info.summary)
        self._info_labels["when_to_pick"].setText(info.when_to_pick)
        self._info_labels["costs"].setText(info.costs)
        merge = "Can be merged into the base model for deployment." if info.mergeable else "Cannot be merged into the base model."
        self._info_labels["merge"].setText(f"{merge} {info.merge_note}".strip())
        avail = self._availability.get(key)
        if avail is not None and not avail.ok:
            self._method_banner.show_message(f"This config uses {info.title}, which cannot run here: {avail.reason}", "warn")
        else:
            self._method_banner.show_message("")

    def _on_show_config_clicked(self) -> None:
        from studio.ui.dialogs.config_dialog import ConfigDialog

        ConfigDialog(self._model.config, self).exec()
