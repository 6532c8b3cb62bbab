"""ExportPage: export a finished run's adapter, or merge it into the base model, in a worker.

The export runs as ``--worker export RUN_DIR --kind adapter|merged --out DIR`` so torch never
enters the GUI; its progress events drive the bar and its outcome is shown as it happened.
Methods that cannot merge have the merged option disabled with the method's own explanation.

The same page measures the trade-off between the two: ``--worker genspeed RUN_DIR`` times greedy
generation with the adapter kept separate and merged, and writes RUN_DIR/genspeed.json, which is
shown whenever that run is selected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QPlainTextEdit, QProgressBar,
                               QPushButton, QRadioButton, QVBoxLayout, QWidget)

from studio.core.config import ConfigError
from studio.core.log_filter import LogFilter
from studio.core.run_roots import all_runs
from studio.core.runs import Run, RunState
from studio.ui.config_model import ConfigModel
from studio.ui.pages.spec import Work
from studio.ui.process import WorkerProcess, split_log_tail
from studio.ui.widgets.card import Banner, Card, fmt_bytes, muted, page_layout, scroll_page, section_label

EXPORTABLE_STATES = frozenset({RunState.COMPLETED, RunState.STOPPED})
GENSPEED_FILE = "genspeed.json"  # written by studio/worker/gen_speed.py into the run folder
GENSPEED_NEW_TOKENS = 128


def genspeed_text(result: dict) -> str:
    """The measured trade-off in one line, from genspeed.json or the worker's genspeed events."""
    adapter = (result.get("adapter") or {}).get("tokens_per_s")
    merged = (result.get("merged") or {}).get("tokens_per_s")
    if adapter is None:
        return ""
    text = f"Adapter kept separate (hot-swappable): {adapter:,.1f} tokens/s"
    if merged is not None:
        speedup = result.get("speedup") or merged / max(adapter, 1e-9)
        text += f"  ·  Merged: {merged:,.1f} tokens/s ({speedup:.2f}× faster)"
    details = [str(result[k]) for k in ("device", "dtype") if result.get(k)]
    if result.get("new_tokens"):
        details.append(f"{result['new_tokens']} new tokens, batch {result.get('batch', 1)}")
    return text + ("\n" + " · ".join(details) if details else "")


class ExportPage(QWidget):
    def __init__(self, config_model: ConfigModel, store_root=None, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = config_model
        self._root = store_root
        self.worker: Optional[WorkerProcess] = None
        self._out_edited = False
        self._banner_run: Optional[Path] = None
        self._speed_partial: dict = {}  # genspeed events of the measurement in progress
        self._log_filter = LogFilter()  # the log card shows the worker's log without bars and deprecation notes

        content = QWidget()
        lay = page_layout(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll_page(content))  # the cards keep their height; a short window scrolls
        card = Card("Export a trained run", "Adapters are small and load on top of the base model; a merged model "
                                            "is a standalone copy with the adapter folded into its weights.")
        card.body.addWidget(section_label("Run"))
        self.run_combo = QComboBox()
        self.run_combo.setPlaceholderText("No finished run yet")
        self.run_combo.currentIndexChanged.connect(self._on_run_combo_changed)
        card.body.addWidget(self.run_combo)
        card.body.addWidget(section_label("What to export"))
        self.adapter_radio = QRadioButton("Adapter (PEFT format) — a few MB; load with PeftModel.from_pretrained")
        self.merged_radio = QRadioButton("Merged model — full size; loads anywhere with AutoModelForCausalLM")
        group = QButtonGroup(self)
        group.addButton(self.adapter_radio)
        group.addButton(self.merged_radio)
        self.adapter_radio.setChecked(True)
        self.adapter_radio.toggled.connect(self._on_kind_toggled)
        card.body.addWidget(self.adapter_radio)
        card.body.addWidget(self.merged_radio)
        self.merge_note = muted("", role="faint")
        card.body.addWidget(self.merge_note)
        card.body.addWidget(section_label("Into folder"))
        row = QHBoxLayout()
        self.out_edit = QLineEdit()
        self.out_edit.textEdited.connect(self._on_out_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        card.body.addLayout(row)
        actions = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.hide()
        self.open_button = QPushButton("Open folder")
        self.open_button.setProperty("flat", True)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.open_button.hide()
        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("export_button")
        self.export_button.setProperty("primary", True)
        self.export_button.setMinimumWidth(120)
        self.export_button.clicked.connect(self._on_export_clicked)
        actions.addWidget(self.progress, 1)
        actions.addStretch(0)
        actions.addWidget(self.open_button)
        actions.addWidget(self.export_button)
        card.body.addLayout(actions)
        self.banner = Banner()
        card.body.addWidget(self.banner)
        lay.addWidget(card)
        lay.addWidget(self._build_speed_card())
        self.exports_card = Card("Already exported", "Earlier exports of this run.")
        self.exports_list = muted("", role="muted")
        self.exports_list.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.exports_card.body.addWidget(self.exports_list)
        lay.addWidget(self.exports_card)
        self.log_card = log_card = Card("Log")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setProperty("mono", True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("The export's log appears here.")
        self.log_view.setMinimumHeight(120)
        log_card.body.addWidget(self.log_view)
        lay.addWidget(log_card, 1)
        log_card.hide()  # shown once an export prints something
        lay.addStretch(0)
        self.refresh()

    def _build_speed_card(self) -> Card:
        card = Card("Adapter or merged: generation speed",
                    "A separate adapter can be swapped at run time (several over one base model) but every "
                    "token pays its extra matmuls; merged runs at base-model speed. Measured on this device.")
        row = QHBoxLayout()
        self.speed_result = muted("", role="muted")
        self.speed_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.speed_button = QPushButton("Measure generation speed")
        self.speed_button.setObjectName("speed_button")
        self.speed_button.clicked.connect(self._on_speed_clicked)
        row.addWidget(self.speed_result, 1)
        row.addWidget(self.speed_button, 0, Qt.AlignmentFlag.AlignTop)
        card.body.addLayout(row)
        self.speed_banner = Banner()
        card.body.addWidget(self.speed_banner)
        return card

    # ---- runs ---------------------------------------------------------------------------
    def refresh(self) -> None:
        current = self.selected_run()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in all_runs(self._root):
            status = run.status()
            if status.get("state") in EXPORTABLE_STATES and run.adapter_dir.exists():
                self.run_combo.addItem(f"{status.get('name') or run.id}  ·  {status.get('state')}  ·  {run.id}", run)
        if self.run_combo.count() and self.run_combo.currentIndex() < 0:
            self.run_combo.setCurrentIndex(0)  # with a placeholder text Qt selects nothing by itself
        self.run_combo.blockSignals(False)
        if current is not None:
            self.select_run(current)
        self._on_run_combo_changed()

    # ---- for the window (studio.ui.pages.spec) --------------------------------------------
    def run_action(self, action: str, run: Run) -> str:
        """"export": show this run, ready to export."""
        self.refresh()
        self.select_run(run)
        return ""

    def busy_work(self) -> Work:
        return Work.JOB if self.worker is not None and self.worker.is_running() else Work.NONE

    def kill_work(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def select_run(self, run: Run) -> None:
        for i in range(self.run_combo.count()):
            if self.run_combo.itemData(i).path == run.path:
                self.run_combo.setCurrentIndex(i)
                return

    def selected_run(self) -> Optional[Run]:
        return self.run_combo.currentData() if self.run_combo.count() else None

    def _on_run_combo_changed(self, *_args) -> None:
        run = self.selected_run()
        busy = self.worker is not None and self.worker.is_running()
        self.export_button.setEnabled(run is not None and not busy)
        self.speed_button.setEnabled(False)
        if run is None:
            self.banner.show_message("No finished runs yet. A run that completed or was stopped (with its adapter "
                                     "saved) can be exported here.", "info")
            self.merged_radio.setEnabled(False)
            self.merge_note.setText("")
            self.exports_card.hide()
            self.speed_result.setText("")
            self.speed_banner.show_message("")
            self._banner_run = None
            return
        if not busy and run.path != self._banner_run:
            self.banner.show_message("")  # an outcome stays until another run is chosen
            self.speed_banner.show_message("")
        self._banner_run = run.path
        self._show_exports(run)
        try:
            info = type(run.config().method).info
        except ConfigError as e:
            self.banner.show_message(str(e), "error")
            self.export_button.setEnabled(False)
            return
        self._show_speed(run, info)
        self.speed_button.setEnabled(info.mergeable and not busy)
        self.merged_radio.setEnabled(info.mergeable)
        if not info.mergeable:
            self.adapter_radio.setChecked(True)
            self.merge_note.setText(f"{info.title} cannot be merged: {info.merge_note}".strip())
        else:
            self.merge_note.setText(info.merge_note)
        self._suggest_out()

    def _show_exports(self, run: Run) -> None:
        rows = []
        if run.exports_dir.is_dir():
            for folder in sorted(p for p in run.exports_dir.iterdir() if p.is_dir()):
                size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
                rows.append(f"{folder}  ·  {fmt_bytes(size)}")
        self.exports_list.setText("\n".join(rows))
        self.exports_card.setVisible(bool(rows))

    def _show_speed(self, run: Run, info) -> None:
        if not info.mergeable:
            self.speed_result.setText(f"{info.title} cannot be merged, so there is no trade-off to measure: "
                                      f"{info.merge_note}".strip())
            return
        try:
            result = json.loads((run.path / GENSPEED_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            result = None
        except (OSError, ValueError) as e:
            result = None
            self.speed_banner.show_message(f"{GENSPEED_FILE} of this run could not be read ({e}); measure again.",
                                           "warn")
        text = genspeed_text(result) if isinstance(result, dict) else ""
        self.speed_result.setText(text or "Not measured yet for this run: one measurement loads the base model "
                                          "once and times generation with the adapter separate, then merged.")

    def _kind(self) -> str:
        return "merged" if self.merged_radio.isChecked() else "adapter"

    def _suggest_out(self) -> None:
        """exports/<kind>, or exports/<kind>-2, -3... so a suggestion never points at an earlier export."""
        run = self.selected_run()
        if run is None or self._out_edited:
            return
        base = run.exports_dir / self._kind()
        out, n = base, 1
        while out.exists() and any(out.iterdir()):
            n += 1
            out = base.with_name(f"{base.name}-{n}")
        self.out_edit.setText(str(out))

    def _on_kind_toggled(self, _checked: bool) -> None:
        self._suggest_out()

    def _on_out_edited(self, _text: str) -> None:
        self._out_edited = True

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if folder:
            self.out_edit.setText(folder)
            self._out_edited = True

    # ---- exporting ----------------------------------------------------------------------
    def _on_export_clicked(self) -> None:
        run = self.selected_run()
        out = self.out_edit.text().strip()
        if run is None:
            return
        if not out:
            self.banner.show_message("Choose a folder to export into.", "warn")
            return
        out_path = Path(out).expanduser()
        if out_path.exists() and any(out_path.iterdir()):
            self.banner.show_message(f"{out_path} is not empty; choose an empty or new folder so nothing is overwritten.", "warn")
            return
        kind = self._kind()
        self.open_button.hide()
        self.banner.show_message(f"Exporting the {kind} of {run.id}…", "info")
        self._launch(run, "export", ("--kind", kind, "--out", str(out_path)), self._on_worker_event_received,
                     lambda state, message, r=run, p=out_path, k=kind: self._on_worker_finished(r, p, state, message, k))

    def _launch(self, run: Run, job: str, args: tuple[str, ...], on_event: Callable[[dict], None],
                on_finished: Callable[[str, str], None]) -> None:
        """Start one worker job for ``run`` (one at a time on this page); its log goes to the log card."""
        worker = WorkerProcess(run, kind=job, extra_args=args, parent=self)
        worker.sig_event_received.connect(on_event)
        worker.sig_log_received.connect(self._on_worker_log_received)
        worker.sig_finished.connect(on_finished)
        self.worker = worker
        self._log_filter = LogFilter()
        self.log_view.clear()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.export_button.setEnabled(False)
        self.speed_button.setEnabled(False)
        try:
            worker.start()
        except OSError as e:
            on_finished(RunState.FAILED, f"The worker could not start: {e}")

    # ---- generation speed ---------------------------------------------------------------
    def _on_speed_clicked(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        self._speed_partial = {}
        self.speed_banner.show_message(f"Measuring generation speed of {run.id}: loading the base model…", "info")
        self._launch(run, "genspeed", ("--new-tokens", str(GENSPEED_NEW_TOKENS)), self._on_speed_event_received,
                     lambda state, message, r=run: self._on_speed_finished(r, state, message))

    def _on_speed_event_received(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "genspeed" and event.get("mode") in ("adapter", "merged"):
            self._speed_partial[event["mode"]] = event
            self._speed_partial.update({k: event.get(k) for k in ("device", "dtype", "new_tokens", "batch")})
            self.speed_result.setText(genspeed_text(self._speed_partial))
        elif kind == "phase":
            self.speed_banner.show_message(f"Measuring: {event.get('detail') or event.get('phase', '')}…", "info")
        elif kind == "warning":
            self.log_view.appendPlainText(f"[warning] {event.get('message', '')}")

    def _on_speed_finished(self, run: Run, state: str, message: str) -> None:
        self.worker = None
        self.progress.hide()
        if state == RunState.COMPLETED:
            self.speed_banner.show_message("")
        else:
            summary, _tail = split_log_tail(message or "The measurement failed.")
            self.speed_banner.show_message(f"{summary} The log below has the details.", "error")
            self.log_card.show()
        self._on_run_combo_changed()  # re-enables the buttons and shows genspeed.json
        if state != RunState.COMPLETED and self._speed_partial:
            self.speed_result.setText(genspeed_text(self._speed_partial))  # what was measured before the failure

    def _on_worker_log_received(self, line: str) -> None:
        shown = self._log_filter.feed(line)
        if shown is None:
            return
        self.log_card.show()
        self.log_view.appendPlainText(shown)

    def _on_worker_event_received(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress" and event.get("total"):
            self.progress.setRange(0, int(event["total"]))
            self.progress.setValue(int(event.get("current") or 0))
            if event.get("label"):
                self.banner.show_message(str(event["label"]) + "…", "info")
        elif kind == "phase":
            self.banner.show_message(str(event.get("detail") or event.get("phase", "")).capitalize(), "info")
        elif kind == "warning":
            self.log_view.appendPlainText(f"[warning] {event.get('message', '')}")

    def _on_worker_finished(self, run: Run, out: Path, state: str, message: str, kind: str = "adapter") -> None:
        self.worker = None
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.speed_button.setEnabled(self.merged_radio.isEnabled())
        self._show_exports(run)
        if state == RunState.COMPLETED:
            what = {"adapter": "the adapter", "merged": "the merged model"}.get(kind, kind)
            self.banner.show_message(f"Exported {what} to {out}.", "ok")
            self._exported_to = out
            self.open_button.show()
            self._out_edited = False
            self._suggest_out()
        else:
            summary, _tail = split_log_tail(message or "The export failed.")
            self.banner.show_message(f"{summary} The log below has the details.", "error")
            self.log_card.show()

    def _on_open_clicked(self) -> None:
        target = getattr(self, "_exported_to", None)
        if target is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self.worker is None:
            self.refresh()
