"""PushCard: upload a finished export to the Hugging Face Hub with a generated model card.

The upload is ``--worker push RUN_DIR --folder DIR --repo ID [--public]`` (studio.core.push_job,
studio.worker.push) in a WorkerProcess: byte progress, Cancel (a stop request, then a kill after a
few seconds: the next push resumes either way), and Resume when the run's last push
(``push_job.last_push``) was cancelled, failed or cut short. The repo is private unless the box is
ticked. Whose token is saved is asked off the GUI thread (studio.core.hub_auth.whoami); "Log in…"
opens HubLoginDialog. The card the repo will get (studio.core.model_card.build_card) can be
previewed, rendered, before anything is sent.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLineEdit, QProgressBar, QPushButton, QTextBrowser,
                               QToolButton, QWidget)

from studio.core.disk import human_bytes
from studio.core.exports import KIND_TITLES, ExportInfo, default_repo_name
from studio.core.push_job import JOB, PushRecord, last_push, push_args
from studio.core.runs import Run, RunState
from studio.ui.pages.export.login_dialog import HubLoginDialog
from studio.ui.process import WorkerProcess, split_log_tail
from studio.ui.tasks import JobSlot
from studio.ui.theme import icon
from studio.ui.widgets.card import Banner, Card, muted, section_label

PUSH_STOP_TIMEOUT_S = 5.0  # a cancelled upload that does not stop by itself is killed after this
ADVICE = {"auth": "Log in again with a token that has write access (Log in… above).",
          "network": "Check the connection, then press Resume: files already on the Hub are not sent again.",
          "disk": "Free some disk space, then press Resume."}


def _account(_state: Any) -> tuple[str, Any]:
    """(in a job) ("none", "") without a saved token, ("ok", Account) or ("error", message)."""
    from studio.core.hub_auth import HubError, saved_token, whoami

    token = saved_token()
    if not token:
        return "none", ""
    try:
        return "ok", whoami(token)
    except HubError as e:
        return "error", e.message


def _card(run: Run, info: ExportInfo, repo: str, _state: Any) -> dict[str, bytes]:
    from studio.core.model_card import build_card

    return build_card(run, info.kind, folder=info.folder, repo_id=repo if "/" in repo else None).files


class PushCard(Card):
    sig_pushed = Signal()  # an upload ended (the page refreshes what it shows)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Push to the Hugging Face Hub", "Upload this export with a generated model card: the "
                         "training, the data, the curves, the evaluation and the verification verdict. Private "
                         "unless you make it public; an interrupted upload resumes where it stopped.")
        self.setObjectName("push_card")
        self.run: Optional[Run] = None
        self.info: Optional[ExportInfo] = None
        self.worker: Optional[WorkerProcess] = None
        self.account: Any = None
        self.login_dialog: Optional[HubLoginDialog] = None
        self._account_job, self._card_job = JobSlot(), JobSlot()
        self._error_kind = ""
        self._cancelled = False
        self._repo_edited = False
        self._logged_out = False  # known to have no saved token (a failed check may still be the network)
        self._build()

    def _build(self) -> None:
        row = QHBoxLayout()
        row.addWidget(section_label("Account"))
        self.account_label = muted("", wrap=False)
        self.account_label.setObjectName("push_account")
        row.addWidget(self.account_label, 1)
        self.login_button = QPushButton("Log in…")
        self.login_button.setObjectName("push_login_button")
        self.login_button.setProperty("flat", True)
        self.login_button.clicked.connect(self.open_login)
        row.addWidget(self.login_button)
        self.body.addLayout(row)
        self.export_label = muted("", role="muted")
        self.export_label.setObjectName("push_export")
        self.body.addWidget(self.export_label)
        row = QHBoxLayout()
        row.addWidget(section_label("Repo"))
        self.repo_edit = QLineEdit()
        self.repo_edit.setObjectName("push_repo_edit")
        self.repo_edit.setPlaceholderText("name (your account's) or namespace/name")
        self.repo_edit.textEdited.connect(self._on_repo_edited)
        self.repo_edit.editingFinished.connect(self._on_repo_edit_finished)
        row.addWidget(self.repo_edit, 1)
        self.public_box = QCheckBox("Make it public")
        self.public_box.setObjectName("push_public")
        self.public_box.setToolTip("Off: a private repo only you (and your organisation) can see. An existing repo "
                                   "keeps its visibility.")
        row.addWidget(self.public_box)
        self.body.addLayout(row)
        self.card_toggle = QToolButton()
        self.card_toggle.setObjectName("push_card_toggle")
        self.card_toggle.setText("Model card preview")
        self.card_toggle.setCheckable(True)
        self.card_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.card_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.card_toggle.toggled.connect(self._on_card_toggled)
        self.body.addWidget(self.card_toggle)
        self.card_view = QTextBrowser()
        self.card_view.setObjectName("push_card_view")
        self.card_view.setMinimumHeight(280)
        self.card_view.hide()
        self.body.addWidget(self.card_view)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = muted("", wrap=False, role="faint")
        row.addWidget(self.progress, 1)
        row.addWidget(self.progress_label)
        row.addStretch(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("push_cancel_button")
        self.cancel_button.setProperty("danger", True)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("push_resume_button")
        self.resume_button.setIcon(icon("play"))
        self.resume_button.clicked.connect(self.resume)
        self.push_button = QPushButton("Push")
        self.push_button.setObjectName("push_button")
        self.push_button.setProperty("primary", True)
        self.push_button.setMinimumWidth(110)
        self.push_button.clicked.connect(self.push)
        for b in (self.cancel_button, self.resume_button, self.push_button):
            row.addWidget(b)
        self.body.addLayout(row)
        self.banner = Banner()
        self.banner.setObjectName("push_banner")
        self.body.addWidget(self.banner)
        self._set_running(False)

    # ---- what to push -------------------------------------------------------------------
    def set_export(self, run: Optional[Run], info: Optional[ExportInfo]) -> None:
        if self.busy():
            return
        changed = self.run is None or run is None or self.run.path != run.path
        same_export = not changed and self.info is not None and info is not None and self.info.folder == info.folder
        self.run, self.info = run, info
        if changed:
            self.banner.show_message("")
            self._repo_edited = False
        if info is None:
            self.export_label.setText("Export the run first: the adapter, the merged model or a GGUF can be pushed.")
        else:
            verdict = info.verdict_text
            self.export_label.setText(f"Uploads {info.folder.name}: the {KIND_TITLES.get(info.kind, info.kind)}, "
                                      f"{human_bytes(info.size)}, {verdict}.")
            if not self._repo_edited and not same_export:  # a name typed for this export stays
                try:
                    name = run.config().name
                except Exception:  # a damaged config: the folder's name will do
                    name = run.id
                self.repo_edit.setText(default_repo_name(name, info.kind))
        self._update_buttons()
        if self.card_toggle.isChecked():
            self._start_card_job()

    def check_account(self) -> None:
        """Ask (off the GUI thread) whose saved token this is."""
        self.account_label.setText("Checking your Hugging Face login…")
        self._account_job.start(_account, self._on_account_checked)

    def _on_account_checked(self, outcome: tuple[str, Any]) -> None:
        status, value = outcome
        self.account = value if status == "ok" else None
        self._logged_out = status == "none"
        if status == "ok":
            write = {True: "", False: " (read-only: log in with a write token to push)", None: ""}[value.can_write]
            self.account_label.setText(f"Logged in as {value.name}, {value.describe().split(', ', 1)[1]}{write}")
            self.login_button.setText("Switch account…")
        elif status == "none":
            self.account_label.setText("Not logged in: no Hugging Face token is saved on this computer.")
            self.login_button.setText("Log in…")
        else:
            self.account_label.setText(str(value))
            self.login_button.setText("Log in…")
        self.account_label.setToolTip(self.account_label.text())
        self._update_buttons()

    def open_login(self) -> HubLoginDialog:
        """Open the login dialog (window-modal, not blocking); returns it."""
        self.login_dialog = dialog = HubLoginDialog(self.window())
        dialog.sig_logged_in.connect(self._on_logged_in)
        dialog.open()
        return dialog

    def _on_logged_in(self, account: Any) -> None:
        self._on_account_checked(("ok", account))
        if self._error_kind == "auth":
            self.banner.show_message("Logged in. Press Resume to try the upload again.", "info")

    # ---- pushing ------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.worker is not None  # from the click until its outcome arrives

    def push(self) -> bool:
        if self.run is None or self.info is None or self.busy():
            return False
        repo = self.repo_edit.text().strip()
        if not repo:
            self.banner.show_message("Give the repo a name.", "warn")
            return False
        return self._launch(push_args(self.info.folder, repo, public=self.public_box.isChecked(), kind=self.info.kind),
                            repo)

    def resume(self) -> bool:
        record = self._record()
        if self.run is None or record is None or not record.resumable or self.busy():
            return False
        return self._launch(record.args(), record.repo_id)

    def cancel(self) -> None:
        if self.busy():
            self._cancelled = True
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")
            self.worker.stop()

    def kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def _launch(self, args: tuple[str, ...], repo: str) -> bool:
        worker = WorkerProcess(self.run, kind=JOB, extra_args=args, stop_timeout_s=PUSH_STOP_TIMEOUT_S, parent=self)
        worker.sig_event_received.connect(self._on_worker_event_received)
        worker.sig_finished.connect(self._on_worker_finished)
        self.worker = worker
        self._error_kind, self._cancelled = "", False
        self.progress.setValue(0)
        self.progress_label.setText(f"Connecting to the Hub for {repo}…")
        self.banner.show_message("")
        self._set_running(True)
        try:
            worker.start()
        except OSError as e:
            self._on_worker_finished(RunState.FAILED, f"The upload could not start: {e}")
            return False
        return True

    def _on_worker_event_received(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress" and event.get("unit") == "bytes":
            total, done = int(event.get("total") or 0), int(event.get("current") or 0)
            self.progress.setValue(int(1000 * done / total) if total else 0)
            self.progress_label.setText(f"{human_bytes(done)} of {human_bytes(total)} · {event.get('label', '')}")
        elif kind == "push":
            self.progress_label.setText(f"{'Private' if event.get('private') else 'Public'} repo "
                                        f"{event.get('repo_id')}: {event.get('files')} files, "
                                        f"{human_bytes(event.get('bytes') or 0)}")
        elif kind == "error":
            self._error_kind = str(event.get("kind") or "")
        elif kind == "warning":
            self.banner.show_message(str(event.get("message", "")), "warn")

    def _on_worker_finished(self, state: str, message: str) -> None:
        self.worker = None
        self._set_running(False)
        summary, _tail = split_log_tail(message or "")
        if state == RunState.COMPLETED:
            self.progress.setValue(1000)
            self.banner.show_message(summary or "Pushed.", "ok")
        elif state in (RunState.STOPPED, RunState.KILLED) or self._cancelled:
            self.banner.show_message("Upload cancelled. Nothing is lost: Resume sends only what is not on the Hub "
                                     "yet.", "info")
        else:
            advice = ADVICE.get(self._error_kind, "")
            self.banner.show_message(f"{summary or 'The upload failed.'}" + (f"\n{advice}" if advice else ""), "error")
            if self._error_kind == "auth":
                self.check_account()
        self._update_buttons()
        self.sig_pushed.emit()

    def _record(self) -> Optional[PushRecord]:
        return last_push(self.run) if self.run is not None else None

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running or self.progress.value() > 0)
        self.progress_label.setVisible(running or bool(self.progress_label.text()))
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.busy()
        record = self._record() if not busy else None
        resumable = record is not None and record.resumable
        self.resume_button.setVisible(resumable and not busy)
        if resumable:
            sent = f" ({human_bytes(record.done_bytes)} of {human_bytes(record.total_bytes)} sent)" \
                if record.total_bytes else ""
            self.resume_button.setToolTip(f"Push {record.folder} to {record.repo_id} again{sent}: files already on "
                                          "the Hub are not sent again.")
        self.push_button.setEnabled(self.info is not None and not busy and not self._logged_out)
        self.push_button.setToolTip("Log in first: no Hugging Face token is saved." if self._logged_out else "")
        self.login_button.setEnabled(not busy)
        self.repo_edit.setEnabled(not busy)
        self.public_box.setEnabled(not busy)

    def _on_repo_edited(self, _text: str) -> None:
        self._repo_edited = True

    def _on_repo_edit_finished(self) -> None:
        if self.card_toggle.isChecked():
            self._start_card_job()  # the card's usage code names the repo

    # ---- the model card -----------------------------------------------------------------
    def _on_card_toggled(self, shown: bool) -> None:
        self.card_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.card_view.setVisible(shown)
        if shown:
            self._start_card_job()

    def _start_card_job(self) -> None:
        run, info = self.run, self.info
        if run is None or info is None:
            self.card_view.setPlainText("Export the run first.")
            return
        repo = self.repo_edit.text().strip()
        if "/" not in repo and self.account is not None:
            repo = f"{self.account.name}/{repo}"
        self.card_view.setPlainText("Writing the model card…")
        self._card_job.start(lambda state: _card(run, info, repo, state), self._on_card_built, self._on_card_failed)

    def _on_card_built(self, files: dict[str, bytes]) -> None:
        doc = self.card_view.document()
        for name, data in files.items():
            if name.endswith(".png"):
                doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(name), QImage.fromData(data))
        text = files.get("README.md", b"").decode("utf-8")
        body = text.split("\n---\n", 1)[1] if text.startswith("---\n") and "\n---\n" in text else text
        self.card_view.setMarkdown(body)
        _restyle(doc)

    def _on_card_failed(self, message: str) -> None:
        self.card_view.setPlainText(f"The model card could not be written: {message}")

    def card_text(self) -> str:
        return self.card_view.toPlainText()


def _restyle(doc: QTextDocument) -> None:
    """Markdown as the theme draws it: thin dark table rules with padded cells, headings a little larger than text
    (Qt's markdown import draws black or white 1 px grids and very large headings)."""
    from PySide6.QtGui import QBrush, QColor, QTextCharFormat, QTextCursor, QTextFormat, QTextFrameFormat, QTextTable

    for frame in doc.rootFrame().childFrames():
        if isinstance(frame, QTextTable):
            fmt = frame.format()
            fmt.setBorder(1)
            fmt.setBorderBrush(QBrush(QColor("#2b3240")))
            fmt.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
            fmt.setCellPadding(5)
            fmt.setCellSpacing(0)
            frame.setFormat(fmt)
    block = doc.begin()
    while block.isValid():
        level = block.blockFormat().headingLevel()
        if level:
            cursor = QTextCursor(block)
            cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
            char = QTextCharFormat()
            char.setProperty(QTextFormat.Property.FontSizeAdjustment, {1: 2, 2: 1}.get(level, 0))
            cursor.mergeCharFormat(char)
            spaced = block.blockFormat()
            spaced.setTopMargin(12 if level > 1 else 0)
            spaced.setBottomMargin(4)
            cursor.setBlockFormat(spaced)
        block = block.next()
