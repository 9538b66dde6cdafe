"""File → Import…: a CSV, a JSON file or a TensorBoard log folder into a new finished run, as
``trainer import`` does.

The dialog only asks (never ``exec()`` it: :meth:`ImportDialog.open`); the window runs
:func:`trainer.imports.to_run.import_run` off the GUI thread with the :class:`ImportRequest`
it emits. The file pickers are non-modal ``QFileDialog``\\ s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.runs_ctl.command_form import error_label
from desktop_app.runs_ctl.spec import name_problem
from trainer.imports.to_run import FORMATS

__all__ = ["ImportDialog", "ImportRequest"]

_FILTER = "Metrics (*.csv *.json *.jsonl *.ndjson);;TensorBoard event files (*tfevents*);;All (*)"


@dataclass(frozen=True)
class ImportRequest:
    """What to import: ``import_run(source, runs_dir, fmt=fmt, name=name, run=run)``."""

    source: Path
    fmt: str = "auto"
    name: str | None = None
    run: str | None = None  # from a CSV of several runs, this one


class ImportDialog(QDialog):
    """Choose a file or a folder, its format, and optionally the new run's name."""

    #: Emitted with the :class:`ImportRequest` when the user clicks Import.
    chosen = Signal(object)

    def __init__(self, runs_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import metrics as a run")
        self.resize(620, 260)
        self.runs_dir = Path(runs_dir)
        self.picker: QFileDialog | None = None  # the file or folder picker open now

        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("a .csv, a .json or a TensorBoard log folder")
        self.file_button = QPushButton("File…")
        self.folder_button = QPushButton("Folder…")
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_edit, 1)
        source_row.addWidget(self.file_button)
        source_row.addWidget(self.folder_button)
        self.source_error = error_label()
        self.format_combo = QComboBox()
        for fmt in FORMATS:
            label = "auto (from the name)" if fmt == "auto" else fmt
            self.format_combo.addItem(label, fmt)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("automatic: the source's name and the time")
        self.name_error = error_label()
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("only for a CSV that holds several runs")
        form = QFormLayout()
        form.addRow("Source", source_row)
        form.addRow("", self.source_error)
        form.addRow("Format", self.format_combo)
        form.addRow("Name", self.name_edit)
        form.addRow("", self.name_error)
        form.addRow("Run in the CSV", self.run_edit)
        note = QLabel("The metrics become a new finished run in the runs folder; the source is "
                      "not changed.")  # fmt: skip
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid);")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton(
            "Import", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.import_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.buttons.accepted.connect(self._on_import)
        self.buttons.rejected.connect(self.reject)
        self.file_button.clicked.connect(lambda: self.browse(folder=False))
        self.folder_button.clicked.connect(lambda: self.browse(folder=True))
        self.source_edit.textChanged.connect(lambda _t: self.revalidate())
        self.name_edit.textChanged.connect(lambda _t: self.revalidate())
        self.revalidate()

    def browse(self, *, folder: bool) -> QFileDialog:
        """Pick the source: a file, or (``folder``) a TensorBoard log folder. Non-modal."""
        if folder:
            picker = QFileDialog(self, "Choose a TensorBoard log folder")
            picker.setFileMode(QFileDialog.FileMode.Directory)
            picker.setOption(QFileDialog.Option.ShowDirsOnly, True)
        else:
            picker = QFileDialog(self, "Choose a CSV or JSON file", "", _FILTER)
            picker.setFileMode(QFileDialog.FileMode.ExistingFile)
        picker.fileSelected.connect(self.source_edit.setText)
        picker.finished.connect(picker.deleteLater)
        self.picker = picker
        picker.open()
        return picker

    def errors(self) -> dict[str, str]:
        """What keeps Import disabled: field -> message."""
        found = {}
        if self.source_error.text():
            found["source"] = self.source_error.text()
        if self.name_error.text():
            found["name"] = self.name_error.text()
        if not self.source_edit.text().strip():
            found.setdefault("source", "choose a file or a folder")
        return found

    def request(self) -> ImportRequest | None:
        """What the dialog describes now, or None while anything is missing or invalid."""
        self.revalidate()
        if self.errors():
            return None
        return ImportRequest(
            Path(self.source_edit.text().strip()).expanduser(),
            fmt=str(self.format_combo.currentData()),
            name=self.name_edit.text().strip() or None,
            run=self.run_edit.text().strip() or None,
        )

    def revalidate(self) -> None:
        source = self.source_edit.text().strip()
        problem = ""
        if source and not Path(source).expanduser().exists():
            problem = f"{source} does not exist"
        _show(self.source_error, problem)
        _show(self.name_error, self._name_problem())
        self.import_button.setEnabled(not self.errors())

    def _name_problem(self) -> str:
        return name_problem(self.name_edit.text(), self.runs_dir)

    def _on_import(self) -> None:
        request = self.request()
        if request is None:
            return
        self.chosen.emit(request)
        self.accept()


def _show(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))
