"""StatsCard: statistics over the whole dataset with the chosen model's tokenizer, their progress and Cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QProgressBar, QPushButton, QWidget

from studio.core.config import TrainingSpec
from studio.ui.pages.data.stats_view import StatsView
from studio.ui.widgets.card import Banner, Card, muted

if TYPE_CHECKING:  # computing statistics pulls in numpy and datasets: only the job imports it
    from studio.core.data.stats import DataStats

TOKENIZER_WARNING = "Token counts need the model's tokenizer:"
PROGRESS_STEPS = 1000  # the bar's range; jobs.progress_for reports in thousandths


class StatsCard(Card):
    sig_cancel_requested = Signal()
    sig_recompute_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Statistics", "Over the whole dataset, with the chosen model's tokenizer.", parent=parent)
        self._bar = QProgressBar()
        self._bar.setRange(0, PROGRESS_STEPS)
        self._bar.setTextVisible(False)
        self._bar.setFixedWidth(160)
        self.label = muted("", wrap=False, role="faint")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setProperty("flat", True)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self._recompute_button = QPushButton("Recompute")
        self._recompute_button.setProperty("flat", True)
        self._recompute_button.clicked.connect(self.sig_recompute_requested)
        for w in (self.label, self._bar, self.cancel_button, self._recompute_button):
            self.add_header_widget(w)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.view = StatsView()
        self.body.addWidget(self.view)
        self.set_running(False, can_recompute=False)

    def set_running(self, running: bool, can_recompute: bool = True) -> None:
        self._bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self._recompute_button.setVisible(not running and can_recompute)
        if running:
            self._bar.setValue(0)

    def show_started(self) -> None:
        self.set_running(True)
        self.banner.show_message("")
        self.label.setText("reading…")

    def show_progress(self, current: int, _total: int, label: str) -> None:
        self._bar.setValue(current)
        self.label.setText(label)

    def show_cancelled(self) -> None:
        self.set_running(False)
        self.label.setText("cancelled")

    def show_stats(self, s: "DataStats", training: TrainingSpec) -> None:
        """The numbers, and a warning when rows are cut or none can be trained on."""
        self.set_running(False)
        self.label.setText("")
        self.view.show_stats(s, training.batch_size, training.grad_accum)
        if not s.trainable:
            self.banner.show_message("No row can be trained on. The problems below say why and how to fix it.",
                                     "error")
        elif s.truncated or s.dropped:
            dropped = f", and {s.dropped:,} rows lose their whole answer and are dropped" if s.dropped else ""
            self.banner.show_message(
                f"{s.truncated + s.dropped:,} rows are longer than the max length ({s.max_len:,} tokens): "
                f"{s.tokens_lost:,} tokens are cut off{dropped}. Raise Max length on the Method page to keep them.",
                "warn")
        else:
            self.banner.show_message("")

    def show_failure(self, message: str) -> None:
        self.set_running(False)
        self.label.setText("")
        self.view.clear()
        self.banner.show_message(message, "error")

    def show_tokenizer_failure(self, message: str) -> None:
        self.banner.show_message(f"{TOKENIZER_WARNING} {message}", "warn")
        self.set_running(False, can_recompute=False)

    def clear_tokenizer_warning(self) -> None:
        """The previous model's tokenizer warning goes once the new tokenizer is read."""
        if self.banner.text().startswith(TOKENIZER_WARNING):
            self.banner.show_message("")

    def _on_cancel_clicked(self) -> None:
        self.label.setText("cancelling…")
        self.sig_cancel_requested.emit()
