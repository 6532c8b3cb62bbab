"""HubLoginDialog: paste a Hugging Face token; it is checked with the Hub, then saved, and never shown again.

studio.core.hub_auth.login asks the Hub whose token it is (a refused token is never saved) and
saves it where huggingface_hub keeps its login, the one `studio hub login` and `hf auth login`
use. The check runs off the GUI thread; the field hides what is typed and is emptied once the
token is saved.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from studio.core.hub_auth import TOKENS_URL, Account
from studio.ui.tasks import JobSlot
from studio.ui.widgets.card import Banner, muted


def _login(token: str) -> tuple[str, Any]:
    """(in a job) ("ok", Account) or ("error", message): a refused token is an answer, not a crash."""
    from studio.core.hub_auth import HubError, login

    try:
        return "ok", login(token)
    except HubError as e:
        return "error", e.message


class HubLoginDialog(QDialog):
    sig_logged_in = Signal(object)  # Account

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Log in to Hugging Face")
        self.setMinimumWidth(520)
        self.account: Optional[Account] = None
        self._job = JobSlot()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(22, 20, 22, 18)
        lay.setSpacing(12)
        title = QLabel("Log in to the Hugging Face Hub")
        title.setProperty("role", "card-title")
        lay.addWidget(title)
        intro = muted(f"Paste an access token with <b>write</b> access (create one at <a href='{TOKENS_URL}' "
                      f"style='color:#a99fff'>{TOKENS_URL}</a>). The studio checks it with the Hub, then saves it "
                      "where huggingface_hub keeps its login (the one <code>hf auth login</code> uses). It never "
                      "shows it again, and never writes it into a run folder, an event or a log.")
        intro.setTextFormat(Qt.TextFormat.RichText)
        intro.setOpenExternalLinks(True)
        lay.addWidget(intro)
        self.token_edit = QLineEdit()
        self.token_edit.setObjectName("hub_token_edit")
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        self.token_edit.textChanged.connect(self._on_token_changed)
        self.token_edit.returnPressed.connect(self._on_login_clicked)
        lay.addWidget(self.token_edit)
        self.banner = Banner()
        lay.addWidget(self.banner)
        row = QHBoxLayout()
        row.addStretch(1)
        cancel = QPushButton("Cancel")
        cancel.setProperty("flat", True)
        cancel.clicked.connect(self.reject)
        self.login_button = QPushButton("Log in")
        self.login_button.setObjectName("hub_login_button")
        self.login_button.setProperty("primary", True)
        self.login_button.setEnabled(False)
        self.login_button.clicked.connect(self._on_login_clicked)
        row.addWidget(cancel)
        row.addWidget(self.login_button)
        lay.addLayout(row)

    def _on_token_changed(self, text: str) -> None:
        self.login_button.setEnabled(bool(text.strip()) and not self._job.busy)

    def _on_login_clicked(self) -> None:
        token = self.token_edit.text().strip()
        if not token or self._job.busy:
            return
        self.login_button.setEnabled(False)
        self.token_edit.setEnabled(False)
        self.banner.show_message("Checking the token with the Hub…", "info")
        self._job.start(lambda _state: _login(token), self._on_login_done)

    def _on_login_done(self, outcome: tuple[str, Any]) -> None:
        status, value = outcome
        self.token_edit.setEnabled(True)
        if status == "ok":
            self.account = value
            self.token_edit.clear()
            self.banner.show_message("")
            self.sig_logged_in.emit(value)
            self.accept()
            return
        self.banner.show_message(str(value), "error")
        self.token_edit.selectAll()
        self.token_edit.setFocus()
        self._on_token_changed(self.token_edit.text())

    def reject(self) -> None:
        self._job.cancel()
        self.token_edit.clear()
        super().reject()
