"""VramPanel: the live "will it fit?" answer beside the training settings.

It listens to the ConfigModel, estimates the run's peak GPU memory on every change (debounced
to one estimate per event-loop burst; an estimate takes well under a millisecond), draws the
breakdown as a stacked bar against the chosen GPU's usable memory, and offers one-click
suggestions that write their changes back through ``ConfigModel.update``. The GPU is this
machine's (free memory as NVML reports it) or a card picked from the catalog.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QToolTip, QVBoxLayout, QWidget)

from studio.core.config import RunConfig
from studio.core.models import ModelError, ModelFacts, resolve_facts
from studio.core.vram import (COMPONENT_TITLES, COMPONENTS, Estimate, Machine, estimate, estimate_recipes,
                              limited_budget, machine_here)
from studio.core.vram.gpus import GPU_CATALOG, Target, detected_target, find_gpu, target_for_spec
from studio.core.vram.suggest import Suggestion, fit_limits, suggest
from studio.ui.config_model import ConfigModel
from studio.ui.theme import COLORS
from studio.ui.widgets.card import Badge, Banner, Card, fmt_bytes, muted, section_label

SEGMENT_COLORS = {
    "weights": "#5aa9ff", "trainable": "#b2a8ff", "gradients": "#7c6cff", "optimizer": "#34d1a0",
    "activations": "#f0b429", "logits": "#ff8a5c", "transients": "#c77dff", "overhead": "#4b5366",
}
DETECTED = "__detected__"
DEFAULT_CARD = "RTX 4090 24GB"  # what a GPU-less machine plans for until the user picks


class MemoryBar(QWidget):
    """A rounded stacked bar of (key, bytes) segments; a marker shows the usable memory."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self._segments: list[tuple[str, int]] = []
        self._budget: Optional[int] = None
        self.setMouseTracking(True)
        self.setMinimumHeight(40)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(300, 40)

    def set_data(self, segments: list[tuple[str, int]], budget: Optional[int]) -> None:
        self._segments = [(k, v) for k, v in segments if v > 0]
        self._budget = budget
        self.update()

    def _scale(self) -> float:
        total = sum(v for _, v in self._segments)
        return float(max(total, self._budget or 0, 1)) * 1.04

    def _track(self) -> QRectF:
        return QRectF(1, 8, self.width() - 2, 20)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = self._track()
        clip = QPainterPath()
        clip.addRoundedRect(track, 6, 6)
        p.fillPath(clip, QColor("#0f1219"))
        p.setClipPath(clip)
        scale = track.width() / self._scale()
        x = track.left()
        for key, value in self._segments:
            w = value * scale
            p.fillRect(QRectF(x, track.top(), max(w, 0.0), track.height()), QColor(SEGMENT_COLORS.get(key, "#888")))
            if w > 3:  # a hairline between segments keeps neighbours apart
                p.fillRect(QRectF(x + w - 1, track.top(), 1, track.height()), QColor(0, 0, 0, 90))
            x += w
        if self._budget:
            over = x - (track.left() + self._budget * scale)
            if over > 0:  # the part that does not fit: darkened and hatched red
                bx = track.left() + self._budget * scale
                rect = QRectF(bx, track.top(), over, track.height())
                p.fillRect(rect, QColor(14, 16, 22, 120))
                p.fillRect(rect, QBrush(QColor(255, 107, 107, 200), Qt.BrushStyle.BDiagPattern))
        p.setClipping(False)
        p.setPen(QPen(QColor("#2a3040"), 1))
        p.drawPath(clip)
        if self._budget:
            bx = track.left() + self._budget * scale
            pen = QPen(QColor(COLORS["text"]), 2)
            p.setPen(pen)
            p.drawLine(QPointF(bx, track.top() - 5), QPointF(bx, track.bottom() + 5))
            p.setBrush(QColor(COLORS["text"]))
            tri = QPainterPath()
            tri.moveTo(bx - 4, track.top() - 8)
            tri.lineTo(bx + 4, track.top() - 8)
            tri.lineTo(bx, track.top() - 3)
            tri.closeSubpath()
            p.fillPath(tri, QColor(COLORS["text"]))
        p.end()

    def segment_at(self, px: float) -> Optional[str]:
        track = self._track()
        scale = track.width() / self._scale()
        x = track.left()
        for key, value in self._segments:
            if x <= px < x + value * scale:
                return key
            x += value * scale
        return None

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802 (Qt override)
        key = self.segment_at(event.position().x())
        if key is None:
            QToolTip.hideText()
            return
        value = dict(self._segments)[key]
        QToolTip.showText(event.globalPosition().toPoint(), f"{COMPONENT_TITLES[key]}: {fmt_bytes(value)}", self)


class _LegendItem(QWidget):
    def __init__(self, key: str, parent: Optional[QWidget] = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(8)
        dot = QLabel()
        dot.setFixedSize(9, 9)
        dot.setStyleSheet(f"background: {SEGMENT_COLORS[key]}; border-radius: 4px;")
        self.name = QLabel(COMPONENT_TITLES[key])
        self.name.setProperty("role", "muted")
        self.share = QLabel("")
        self.share.setProperty("role", "faint")
        self.share.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.share.setMinimumWidth(34)
        self.value = QLabel("")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value.setMinimumWidth(62)
        lay.addWidget(dot)
        lay.addWidget(self.name, 1)
        lay.addWidget(self.share)
        lay.addWidget(self.value)


class VramPanel(Card):
    """Live memory estimate of the ConfigModel's run, with suggestions that apply in one click."""

    def __init__(self, config_model: ConfigModel, parent: Optional[QWidget] = None):
        super().__init__("GPU memory", "Estimated peak while training", parent=parent)
        self._model = config_model
        self._facts_cache: dict[tuple[str, str], tuple[Optional[ModelFacts], str]] = {}
        self._target: Optional[Target] = None
        self.estimate: Optional[Estimate] = None
        self.suggestions: list[Suggestion] = []
        self.suggestion_buttons: list[QPushButton] = []

        self.badge = Badge("")
        self.add_header_widget(self.badge)

        self.gpu_combo = QComboBox()
        self.gpu_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.gpu_combo.setMinimumContentsLength(12)
        self.gpu_combo.setToolTip("The GPU to plan for: this machine's, or any card from the list.")
        self.gpu_hint = muted("No NVIDIA GPU found here; pick the card to plan for.", role="faint")
        self.body.addWidget(self.gpu_hint)
        self._fill_gpus()
        self.gpu_combo.currentIndexChanged.connect(self._on_gpu_combo_changed)
        self.body.addWidget(self.gpu_combo)

        totals = QHBoxLayout()
        totals.setSpacing(8)
        self.total_label = QLabel("—")
        self.total_label.setProperty("role", "metric-value")
        self.budget_label = muted("", wrap=False)
        totals.addWidget(self.total_label)
        totals.addWidget(self.budget_label, 1, Qt.AlignmentFlag.AlignBottom)
        self.body.addLayout(totals)

        self.bar = MemoryBar()
        self.body.addWidget(self.bar)
        self.verdict = Banner()
        self.body.addWidget(self.verdict)

        legend = QVBoxLayout()
        legend.setSpacing(5)
        self._legend: dict[str, _LegendItem] = {}
        for key in COMPONENTS:
            item = _LegendItem(key)
            self._legend[key] = item
            legend.addWidget(item)
        self.body.addLayout(legend)

        self.detail = muted("", role="faint")
        self.body.addWidget(self.detail)
        self.compare = muted("", role="faint")
        self.body.addWidget(self.compare)
        self.limits = muted("")
        self.body.addWidget(self.limits)

        self.suggest_title = section_label("Make it fit")
        self.body.addWidget(self.suggest_title)
        self._suggest_box = QVBoxLayout()
        self._suggest_box.setSpacing(6)
        self.body.addLayout(self._suggest_box)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self.refresh)
        config_model.sig_config_changed.connect(self._on_config_changed)
        self._on_gpu_combo_changed()

    # ---- GPU choice ------------------------------------------------------------------------
    def _fill_gpus(self) -> None:
        self.gpu_combo.blockSignals(True)
        self.gpu_combo.clear()
        det = detected_target()
        if det is not None:
            self.gpu_combo.addItem(f"This machine: {det.label.replace(' (this machine)', '')}", DETECTED)
        for spec in GPU_CATALOG:
            self.gpu_combo.addItem(spec.name, spec.name)
        if det is None:
            self.gpu_combo.setCurrentIndex(max(0, self.gpu_combo.findData(DEFAULT_CARD)))
        self.gpu_hint.setVisible(det is None)
        self.gpu_combo.blockSignals(False)

    def set_target_name(self, name: str) -> None:
        """Plan for a catalog card (by name) or, with 'detected', this machine's GPU."""
        spec = find_gpu(name) if name != DETECTED else None
        idx = self.gpu_combo.findData(DETECTED if name == DETECTED else (spec.name if spec else name))
        if idx >= 0:
            self.gpu_combo.setCurrentIndex(idx)

    def _on_gpu_combo_changed(self, *_: Any) -> None:
        data = self.gpu_combo.currentData()
        if data == DETECTED:
            self._target = detected_target()
        else:
            spec = find_gpu(str(data or DEFAULT_CARD))
            self._target = target_for_spec(spec) if spec else None
        self.refresh()

    @property
    def target(self) -> Optional[Target]:
        return self._target

    # ---- model facts -----------------------------------------------------------------------
    def set_model_facts(self, facts: Optional[ModelFacts]) -> None:
        """Facts another page already read for the current model (saves reading them again)."""
        if facts is None:
            return
        spec = self._model.config.model
        self._facts_cache[(spec.source, spec.path)] = (facts, "")
        self._schedule()

    def _facts(self, config: RunConfig) -> tuple[Optional[ModelFacts], str]:
        key = (config.model.source, config.model.path)
        if key not in self._facts_cache:
            try:
                self._facts_cache[key] = (resolve_facts(*key), "")
            except ModelError as e:
                self._facts_cache[key] = (None, str(e))
            except OSError as e:
                self._facts_cache[key] = (None, f"cannot read the model's files: {e}")
        return self._facts_cache[key]

    # ---- updating --------------------------------------------------------------------------
    def _on_config_changed(self, _config: RunConfig) -> None:
        self._schedule()

    def _schedule(self) -> None:
        self._timer.start()

    def refresh(self) -> None:
        """Estimate now (the debounced path calls this too)."""
        self._timer.stop()
        config = self._model.config
        facts, error = self._facts(config)
        if facts is None:
            self._show_error(error or "The model's config.json is needed for an estimate.")
            return
        target = self._target
        budget = limited_budget(target.budget_bytes if target else None, config)
        bf16 = target.bf16 if target else True
        machine = machine_here()  # this machine's calibration, allocator and kernels, read per refresh
        est = estimate(config, facts, budget_bytes=budget, bf16_supported=bf16, machine=machine)
        self.estimate = est
        self._show(est, config, facts, target, machine)

    def _show_error(self, message: str) -> None:
        self.estimate = None
        self.total_label.setText("—")
        self.budget_label.setText("")
        self.badge.set("", "")
        self.badge.setVisible(False)
        self.bar.set_data([], None)
        self.verdict.show_message(f"No estimate: {message}", "warn")
        for item in self._legend.values():
            item.setVisible(False)
        for w in (self.detail, self.compare, self.limits):
            w.setText("")
            w.setVisible(False)
        self._set_suggestions([])

    def _show(self, est: Estimate, config: RunConfig, facts: Optional[ModelFacts], target: Optional[Target],
              machine: Machine) -> None:
        budget = limited_budget(target.budget_bytes if target else None, config)
        limited = budget is not None and budget != (target.budget_bytes if target else None)
        self.total_label.setText(fmt_bytes(est.device_used))
        self.budget_label.setText((f"of {fmt_bytes(budget)} " + ("allowed (your limit)" if limited else "usable"))
                                  if budget else "no GPU chosen")
        self.bar.set_data([(k, est.breakdown[k]) for k in COMPONENTS], budget)
        small = 0.004 * est.device_used
        for key, item in self._legend.items():
            value = est.breakdown[key]
            item.setVisible(value > small)
            item.value.setText(fmt_bytes(value))
            item.share.setText(f"{100 * value / max(1, est.device_used):.0f}%")
        self.badge.setVisible(budget is not None)
        if budget is not None:
            headroom = est.headroom(budget)
            if headroom < 0:
                self.badge.set("DOESN'T FIT", "error")
                where = "your memory limit" if limited else f"what {target.label} can give a run"
                self.verdict.show_message(f"Doesn't fit: {fmt_bytes(-headroom)} over {where}.", "error")
            elif headroom < 0.08 * budget:
                self.badge.set("TIGHT", "warn")
                self.verdict.show_message(f"Fits, with only {fmt_bytes(headroom)} headroom.", "warn")
            else:
                self.badge.set("FITS", "ok")
                self.verdict.show_message(f"Fits with {fmt_bytes(headroom)} headroom.", "ok")
        else:
            self.verdict.show_message("Pick a GPU to see whether it fits.", "info")
        if config.training.device == "cpu":
            self.badge.setVisible(False)
            self.verdict.show_message("This run is set to train on the CPU, where memory is the computer's RAM; "
                                      "the numbers show what the GPU above would need.", "info")
        s = est.setup
        t = config.training
        gc = "on" if s.gc else "off"
        if t.gradient_checkpointing == "auto":
            gc += " (auto)"
        self.detail.setText(f"Peak at the {est.phase_title} · checkpointing {gc} · {s.loss} loss · {s.precision}"
                            + (f" · {est.notes[0]}" if est.notes else ""))
        self.detail.setVisible(True)
        try:
            plain = estimate_recipes(config, facts, budget_bytes=budget, machine=machine)
        except (ValueError, KeyError):
            plain = {}
        others = [e for k, e in plain.items() if k != "studio"]
        worst = max(others, key=lambda e: e.device_used) if others else None
        differs = worst is not None and worst.device_used > 1.03 * est.device_used
        if differs:
            self.compare.setText(f"Plain transformers + PEFT would need {fmt_bytes(worst.device_used)} "
                                 f"({worst.device_used / max(1, est.device_used):.1f}x).")
        self.compare.setVisible(differs)
        if budget is not None:
            lim = fit_limits(config, facts, budget, bf16_supported=target.bf16, machine=machine)
            self.limits.setText(
                f"Largest micro-batch that fits: <b>{lim.max_batch or 'none'}</b> · longest max length at "
                f"micro-batch {t.batch_size}: <b>{lim.max_seq_len or 'none'}</b>")
            self.limits.setVisible(True)
            self._set_suggestions(suggest(config, facts, budget, bf16_supported=target.bf16, machine=machine))
        else:
            self.limits.setVisible(False)
            self._set_suggestions([])

    def _set_suggestions(self, suggestions: list[Suggestion]) -> None:
        self.suggestions = suggestions
        for b in self.suggestion_buttons:
            self._suggest_box.removeWidget(b)
            b.hide()
            b.deleteLater()
        self.suggestion_buttons = []
        for sug in suggestions[:5]:
            mark = "✓ fits at" if sug.fits else "→"
            b = QPushButton(f"{sug.title}\n{mark} {fmt_bytes(sug.device_used)} · {sug.short_cost}")
            b.setProperty("flat", True)
            b.setToolTip(f"Sets {sug.describe()}\nCost: {sug.speed_cost}")
            b.setStyleSheet("text-align: left; padding: 6px 12px;")
            b.setMinimumHeight(2 * b.fontMetrics().lineSpacing() + 20)  # two lines, descenders included
            b.clicked.connect(lambda _=False, s=sug: self._on_suggestion_clicked(s))
            self._suggest_box.addWidget(b)
            self.suggestion_buttons.append(b)
        self.suggest_title.setVisible(bool(self.suggestion_buttons))

    def _on_suggestion_clicked(self, sug: Suggestion) -> None:
        if not self._model.update(dict(sug.changes)):
            self.verdict.show_message("Could not apply: " + "; ".join(self._model.error_lines(dict(sug.changes))),
                                      "error")
            return
        self.refresh()

    def verdict_text(self) -> str:
        return self.verdict.text()
