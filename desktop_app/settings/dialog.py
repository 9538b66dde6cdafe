"""The settings dialog: non-modal, checks every value, saves only when the user presses Save.

Open it with ``show()`` (never ``exec()``: a nested event loop breaks qasync's tasks) and
connect :attr:`SettingsDialog.settingsAccepted`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.settings.model import (
    HANG_GRACE_S_RANGE,
    HEARTBEAT_TIMEOUT_S_RANGE,
    LOG_LEVELS,
    MAX_RESTARTS_RANGE,
    MOVING_WINDOW_RANGE,
    REFRESH_MS_RANGE,
    RESTART_DELAY_S_RANGE,
    SYSTEM_POLL_S_RANGE,
    AppSettings,
    SettingsError,
    default_smoothing_value,
    save_settings,
)

_SMOOTHING_LABELS = {"ema": "Exponential moving average", "moving": "Moving mean", "none": "None"}
_FIELD_LABELS = {
    "runs_dir": "Runs folder",
    "refresh_ms": "Refresh",
    "smoothing_kind": "Smoothing",
    "smoothing_value": "Smoothing amount",
    "theme": "Theme",
    "confirm_delete": "Ask before deleting",
    "system_poll_s": "GPU/CPU readings",
    "max_restarts": "Max restarts",
    "restart_delay_s": "First restart delay",
    "heartbeat_timeout_s": "Heartbeat timeout",
    "hang_grace_s": "Hang grace",
    "on_quit": "On quit with live runs",
    "log_level": "App log level",
}
_THEME_LABELS = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
_QUIT_LABELS = {"ask": "Ask", "stop": "Stop them", "leave": "Leave them running"}


class SettingsDialog(QDialog):
    """Edits :class:`AppSettings`. Save checks them, writes the file (unless ``save=False``),
    emits :attr:`settingsAccepted` and closes; an error keeps the dialog open and says why.
    """

    #: The accepted (and saved) settings.
    settingsAccepted = Signal(object)

    def __init__(
        self,
        settings: AppSettings,
        parent: QWidget | None = None,
        *,
        path: Path | None = None,
        save: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("TrainDesk settings")
        self.setModal(False)
        self.setMinimumWidth(560)
        self._path = path
        self._save = save
        self._settings = settings
        self._build()
        self.set_settings(settings)

    # ------------------------------------------------------------------ public
    def set_settings(self, settings: AppSettings) -> None:
        """Show ``settings`` in the fields."""
        self.runs_dir.setText(settings.runs_dir)
        self.refresh_ms.setValue(settings.refresh_ms)
        self.smoothing_kind.setCurrentIndex(self.smoothing_kind.findData(settings.smoothing_kind))
        self._on_kind_changed()
        self.smoothing_value.setValue(settings.smoothing_value)
        self.theme.setCurrentIndex(self.theme.findData(settings.theme))
        self.confirm_delete.setChecked(settings.confirm_delete)
        self.system_poll_s.setValue(settings.system_poll_s)
        self.max_restarts.setValue(settings.max_restarts)
        self.restart_delay_s.setValue(settings.restart_delay_s)
        self.heartbeat_timeout_s.setValue(settings.heartbeat_timeout_s)
        self.hang_grace_s.setValue(settings.hang_grace_s)
        self.on_quit.setCurrentIndex(self.on_quit.findData(settings.on_quit))
        self.log_level.setCurrentIndex(self.log_level.findData(settings.log_level))
        self.validate()

    def values(self) -> dict[str, Any]:
        """The fields' values, unchecked."""
        return {
            "runs_dir": self.runs_dir.text().strip(),
            "refresh_ms": self.refresh_ms.value(),
            "smoothing_kind": self.smoothing_kind.currentData(),
            "smoothing_value": self.smoothing_value.value(),
            "theme": self.theme.currentData(),
            "confirm_delete": self.confirm_delete.isChecked(),
            "system_poll_s": self.system_poll_s.value(),
            "max_restarts": self.max_restarts.value(),
            "restart_delay_s": self.restart_delay_s.value(),
            "heartbeat_timeout_s": self.heartbeat_timeout_s.value(),
            "hang_grace_s": self.hang_grace_s.value(),
            "on_quit": self.on_quit.currentData(),
            "log_level": self.log_level.currentData(),
        }

    def validate(self) -> AppSettings | None:
        """The settings the fields describe, or None (the reason shown, Save disabled)."""
        try:
            settings = self._settings.replace(**self.values())
            folder = Path(settings.runs_dir).expanduser() if settings.runs_dir else None
            if folder is not None and folder.exists() and not folder.is_dir():
                raise SettingsError("runs_dir", f"{folder} is a file, not a folder")
        except SettingsError as exc:
            self._show_error(f"{_FIELD_LABELS.get(exc.key, exc.key)}: {exc.reason}")
            return None
        self._show_error("")
        return settings

    def accept(self) -> None:
        settings = self.validate()
        if settings is None:
            return
        if self._save:
            try:
                save_settings(settings, self._path)
            except (OSError, SettingsError) as exc:
                self._show_error(f"cannot save the settings: {exc}")
                return
        self._settings = settings
        self.settingsAccepted.emit(settings)
        super().accept()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.runs_dir = QLineEdit()
        self.runs_dir.setPlaceholderText(str(AppSettings().resolved_runs_dir()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        runs_row = QHBoxLayout()
        runs_row.addWidget(self.runs_dir, 1)
        runs_row.addWidget(browse)

        self.refresh_ms = QSpinBox()
        self.refresh_ms.setRange(*REFRESH_MS_RANGE)
        self.refresh_ms.setSingleStep(100)
        self.refresh_ms.setSuffix(" ms")
        self.smoothing_kind = QComboBox()
        for kind, label in _SMOOTHING_LABELS.items():
            self.smoothing_kind.addItem(label, kind)
        self.smoothing_value = QDoubleSpinBox()
        self.theme = QComboBox()
        for choice, label in _THEME_LABELS.items():
            self.theme.addItem(label, choice)
        self.confirm_delete = QCheckBox("Ask before deleting a run")
        self.system_poll_s = QDoubleSpinBox()
        self.system_poll_s.setRange(*SYSTEM_POLL_S_RANGE)
        self.system_poll_s.setDecimals(1)
        self.system_poll_s.setSuffix(" s")

        self.max_restarts = QSpinBox()
        self.max_restarts.setRange(*MAX_RESTARTS_RANGE)
        self.max_restarts.setToolTip(
            "Restarts in a row of a crashed or failed run, from its last checkpoint (0: never)"
        )
        self.restart_delay_s = _seconds(RESTART_DELAY_S_RANGE, "doubles with each restart in a row")
        self.heartbeat_timeout_s = _seconds(
            HEARTBEAT_TIMEOUT_S_RANGE, "no heartbeat for this long: the run is unresponsive"
        )
        self.hang_grace_s = _seconds(
            HANG_GRACE_S_RANGE, "unresponsive this much longer: killed as hung and restarted"
        )
        self.on_quit = QComboBox()
        for choice, label in _QUIT_LABELS.items():
            self.on_quit.addItem(label, choice)
        self.on_quit.setToolTip(
            "Runs started here that are still training when TrainDesk quits. A signal or a "
            "logout cannot ask: Ask then stops them (each saves a checkpoint)."
        )

        self.log_level = QComboBox()
        for level in LOG_LEVELS:
            self.log_level.addItem(level, level)
        self.log_level.setToolTip(
            "What the app's own log (JSON lines, Help → Open app log folder) records; "
            "$TRAINDESK_LOG_LEVEL overrides it"
        )

        form = QFormLayout()
        form.addRow(_FIELD_LABELS["runs_dir"], runs_row)
        form.addRow("Refresh every", self.refresh_ms)
        form.addRow(_FIELD_LABELS["smoothing_kind"], self.smoothing_kind)
        form.addRow(_FIELD_LABELS["smoothing_value"], self.smoothing_value)
        form.addRow(_FIELD_LABELS["theme"], self.theme)
        form.addRow("GPU/CPU readings every", self.system_poll_s)
        form.addRow("", self.confirm_delete)
        form.addRow(_FIELD_LABELS["max_restarts"], self.max_restarts)
        form.addRow(_FIELD_LABELS["restart_delay_s"], self.restart_delay_s)
        form.addRow(_FIELD_LABELS["heartbeat_timeout_s"], self.heartbeat_timeout_s)
        form.addRow(_FIELD_LABELS["hang_grace_s"], self.hang_grace_s)
        form.addRow(_FIELD_LABELS["on_quit"], self.on_quit)
        form.addRow(_FIELD_LABELS["log_level"], self.log_level)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #dc2626;")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        defaults = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        defaults.clicked.connect(lambda: self.set_settings(AppSettings()))

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        self.runs_dir.textChanged.connect(lambda _text: self.validate())
        self.smoothing_kind.currentIndexChanged.connect(lambda _index: self._on_kind_changed())
        spins = (self.refresh_ms, self.smoothing_value, self.system_poll_s, self.max_restarts,
                 self.restart_delay_s, self.heartbeat_timeout_s, self.hang_grace_s)  # fmt: skip
        for spin in spins:
            spin.valueChanged.connect(lambda _value: self.validate())

    def _on_kind_changed(self) -> None:
        kind = self.smoothing_kind.currentData()
        spin = self.smoothing_value
        spin.blockSignals(True)
        if kind == "moving":
            spin.setDecimals(0)
            spin.setRange(*MOVING_WINDOW_RANGE)
            spin.setSingleStep(1)
            spin.setSuffix(" points")
        else:
            spin.setDecimals(3)
            spin.setRange(0.0, 0.999)
            spin.setSingleStep(0.05)
            spin.setSuffix("")
        spin.setValue(default_smoothing_value(kind))
        spin.setEnabled(kind != "none")
        spin.blockSignals(False)
        self.validate()

    def _browse(self) -> None:
        # open(), not exec(): no nested event loop.
        dialog = QFileDialog(self, "Runs folder", self.runs_dir.text() or str(Path.home()))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.runs_dir.setText)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setEnabled(not text or text.startswith("cannot save"))


def _seconds(limits: tuple[float, float], tip: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(*limits)
    spin.setDecimals(1)
    spin.setSuffix(" s")
    spin.setToolTip(tip)
    return spin


def changed_keys(old: AppSettings, new: AppSettings) -> list[str]:
    """The names of the settings that differ (to apply only what changed)."""
    a, b = dataclasses.asdict(old), dataclasses.asdict(new)
    return [key for key in a if a[key] != b[key]]
