"""ConfigDialog: the current RunConfig as YAML and the equivalent command line, ready to copy."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QDialog, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from studio.core.config import RunConfig
from studio.ui.widgets.card import Banner, section_label


class ConfigDialog(QDialog):
    def __init__(self, config: RunConfig, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Config and command line")
        self.resize(720, 640)
        self._config = config
        lay = QVBoxLayout(self)
        lay.setContentsMargins(22, 20, 22, 20)
        lay.setSpacing(10)
        lay.addWidget(section_label("config.yaml"))
        self.yaml_view = QPlainTextEdit(config.to_yaml())
        self.yaml_view.setReadOnly(True)
        self.yaml_view.setProperty("mono", True)
        lay.addWidget(self.yaml_view, 1)
        row = QHBoxLayout()
        copy_yaml = QPushButton("Copy YAML")
        copy_yaml.clicked.connect(lambda: self._copy(self.yaml_view.toPlainText(), "YAML copied."))
        save = QPushButton("Save as…")
        save.clicked.connect(self._on_save_clicked)
        row.addWidget(copy_yaml)
        row.addWidget(save)
        row.addStretch(1)
        lay.addLayout(row)
        lay.addSpacing(8)
        lay.addWidget(section_label("Same run from a terminal"))
        hint = QLabel("Save the YAML as config.yaml, then run:")
        hint.setProperty("role", "muted")
        lay.addWidget(hint)
        cli_row = QHBoxLayout()
        self.cli_edit = QLineEdit("studio train config.yaml")
        self.cli_edit.setReadOnly(True)
        self.cli_edit.setProperty("mono", True)
        copy_cli = QPushButton("Copy command")
        copy_cli.clicked.connect(lambda: self._copy(self.cli_edit.text(), "Command copied."))
        cli_row.addWidget(self.cli_edit, 1)
        cli_row.addWidget(copy_cli)
        lay.addLayout(cli_row)
        self.banner = Banner()
        lay.addWidget(self.banner)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        lay.addLayout(bottom)

    def _copy(self, text: str, note: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.banner.show_message(note, "ok")

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save config", "config.yaml", "YAML (*.yaml *.yml)")
        if not path:
            return
        try:
            self._config.save(path)
        except OSError as e:
            self.banner.show_message(f"Could not save {path}: {e.strerror or e}", "error")
            return
        self.cli_edit.setText(f"studio train {path}")
        self.banner.show_message(f"Saved {path}.", "ok")
