"""AboutDialog: what the studio is, its version, and where it keeps its files."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio import __version__
from studio.core.paths import studio_home
from studio.ui.theme import icon


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About the studio")
        self.setMinimumWidth(460)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(26, 24, 26, 20)
        lay.setSpacing(10)
        top = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(icon("logo", None, 96).pixmap(56, 56))
        top.addWidget(logo)
        titles = QVBoxLayout()
        name = QLabel("Fine-tuning Studio")
        name.setProperty("role", "card-title")
        name.setStyleSheet("font-size: 18px;")
        ver = QLabel(f"Version {__version__}")
        ver.setProperty("role", "muted")
        titles.addWidget(name)
        titles.addWidget(ver)
        top.addLayout(titles, 1)
        lay.addLayout(top)
        text = QLabel("Fine-tune language models on your own GPU: LoRA, QLoRA and friends, with a live memory "
                      "estimate, live curves, and adapters or merged models at the end. Training runs in a separate "
                      "process, so the window never freezes and a run can outlive it.")
        text.setWordWrap(True)
        lay.addWidget(text)
        facts = QLabel(f"Files: {studio_home()}<br>Python {platform.python_version()} · Qt for Python {pyside_version} · "
                       f"{platform.system()} {platform.machine()}")
        facts.setProperty("role", "faint")
        facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        facts.setWordWrap(True)
        lay.addWidget(facts)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        lay.addLayout(row)
