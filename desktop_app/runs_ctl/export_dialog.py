"""The export dialog: which metrics to export, and to which CSV file. Non-modal; answers with
the :attr:`ExportDialog.chosen` signal."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.runs_ctl.controls import metric_keys
from trainer.errors import JournalError


class ExportDialog(QDialog):
    """Lists the runs' metric keys (all checked) and asks for a ``.csv`` path."""

    #: ``(csv_path, keys)`` when the user clicks Export.
    chosen = Signal(str, list)

    def __init__(self, run_folder: Path | list[Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        folders = [run_folder] if isinstance(run_folder, Path) else list(run_folder)
        run_folder = folders[0]
        title = run_folder.name if len(folders) == 1 else f"{len(folders)} runs"
        self.setWindowTitle(f"Export {title}")
        self.resize(420, 420)
        self.keys = QListWidget()
        self.error = QLabel()
        self.error.setStyleSheet("color: #dc2626;")
        self.note = QLabel()
        self.note.setStyleSheet("color: #d97706;")
        names: list[str] = []
        for folder in folders:
            try:
                names += [n for n in metric_keys(folder) if n not in names]
            except JournalError as exc:
                self.error.setText(str(exc))
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.keys.addItem(item)
        all_button, none_button = QPushButton("All"), QPushButton("None")
        all_button.clicked.connect(lambda: self._check_all(Qt.CheckState.Checked))
        none_button.clicked.connect(lambda: self._check_all(Qt.CheckState.Unchecked))
        stem = run_folder.name if len(folders) == 1 else "runs"
        self.path_edit = QLineEdit(str(Path.home() / f"{stem}.csv"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self._file_dialog: QFileDialog | None = None

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.accepted.connect(self._on_export)
        self.buttons.rejected.connect(self.reject)

        pick = QHBoxLayout()
        pick.addWidget(QLabel("Metrics"), 1)
        pick.addWidget(all_button)
        pick.addWidget(none_button)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        layout.addWidget(self.keys, 1)
        layout.addWidget(QLabel("CSV file"))
        layout.addLayout(path_row)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.keys.itemChanged.connect(lambda _i: self._revalidate())
        self.path_edit.textChanged.connect(lambda _t: self._revalidate())
        self._revalidate()

    def checked_keys(self) -> list[str]:
        items = (self.keys.item(i) for i in range(self.keys.count()))
        return [it.text() for it in items if it.checkState() == Qt.CheckState.Checked]

    def _check_all(self, state: Qt.CheckState) -> None:
        for i in range(self.keys.count()):
            self.keys.item(i).setCheckState(state)

    def _revalidate(self) -> None:
        text = self.path_edit.text().strip()
        path = Path(text).expanduser()
        ok = bool(self.checked_keys()) and bool(text) and path.parent.is_dir()
        self.export_button.setEnabled(ok)
        self.note.setText(
            f"{path.name} exists: it will be replaced" if ok and path.exists() else ""
        )

    def _browse(self) -> None:
        if self._file_dialog is None:
            dialog = QFileDialog(self, "Export to", self.path_edit.text(), "CSV files (*.csv)")
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setDefaultSuffix("csv")
            dialog.fileSelected.connect(self.path_edit.setText)
            self._file_dialog = dialog
        self._file_dialog.open()

    def _on_export(self) -> None:
        self.chosen.emit(str(Path(self.path_edit.text().strip()).expanduser()), self.checked_keys())
        self.accept()
