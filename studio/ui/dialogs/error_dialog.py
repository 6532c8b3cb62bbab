"""ErrorDialog: an unexpected error, said plainly, with the details and where they were logged."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget


class ErrorDialog(QDialog):
    def __init__(self, summary: str, details: str, log_path: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Something went wrong")
        self.resize(680, 420)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(22, 20, 22, 18)
        title = QLabel("The studio hit an unexpected error")
        title.setProperty("role", "card-title")
        lay.addWidget(title)
        text = QLabel(f"{summary}<br><br>Your runs are safe: training happens in a separate process and everything "
                      f"is on disk. The studio keeps working; if something looks wrong, restart it."
                      + (f"<br>The details were saved to {log_path}." if log_path else ""))
        text.setWordWrap(True)
        text.setProperty("role", "muted")
        lay.addWidget(text)
        self.details = QPlainTextEdit(details)
        self.details.setReadOnly(True)
        self.details.setProperty("mono", True)
        lay.addWidget(self.details, 1)
        row = QHBoxLayout()
        copy = QPushButton("Copy details")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(details))
        close = QPushButton("Close")
        close.setProperty("primary", True)
        close.clicked.connect(self.accept)
        row.addWidget(copy)
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
