"""The charts' toolbar: smoothing, x axis, log scales, outliers and follow on one row; the key
filter and grouping by a config key on a second. A thin widget of signals.

Its setters update the controls without emitting, so the panel can mirror state changed
elsewhere (a zoom that turns follow off, a call of ``ChartsPanel.set_smoothing``).
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

SMOOTHING_CHOICES = (
    ("none", "No smoothing"),
    ("ema", "EMA"),
    ("ma", "Moving average"),
    ("cma", "Centred moving average"),
)
X_CHOICES = (("step", "Step"), ("relative", "Relative time"), ("wall", "Wall time"))
DEFAULT_EMA = 0.6
DEFAULT_WINDOW = 25


class ChartsToolbar(QWidget):
    """Controls of the charts panel; emits what the user changes."""

    smoothingChanged = Signal(str, float)
    xModeChanged = Signal(str)
    logYChanged = Signal(bool)
    logXChanged = Signal(bool)
    followChanged = Signal(bool)
    outliersChanged = Signal(bool)
    #: The key filter's text, as typed.
    filterChanged = Signal(str)
    #: The config key to group runs by ("" for none).
    groupByChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.smoothing = QComboBox()
        for kind, text in SMOOTHING_CHOICES:
            self.smoothing.addItem(text, kind)
        self.smoothing.setToolTip("Smoothing of the curves (the raw curve stays, faint)")
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 0.999)
        self.weight.setDecimals(3)
        self.weight.setSingleStep(0.05)
        self.weight.setValue(DEFAULT_EMA)
        self.weight.setToolTip("EMA weight: 0 is no smoothing, 0.999 the most")
        self.ma_window = QSpinBox()
        self.ma_window.setRange(1, 100_000)
        self.ma_window.setValue(DEFAULT_WINDOW)
        self.ma_window.setSuffix(" pts")
        self.ma_window.setToolTip("Moving average window, in points")
        self.x_mode = QComboBox()
        for mode, text in X_CHOICES:
            self.x_mode.addItem(text, mode)
        self.x_mode.setToolTip("X axis: step, time since the run started, or wall-clock time")
        self.log_y = QCheckBox("Log y")
        self.log_x = QCheckBox("Log x")
        self.outliers = QCheckBox("Ignore outliers")
        self.outliers.setToolTip(
            "Fit the y axes to the 1st-99th percentile of the values drawn, so that one spike "
            "does not flatten the curve (a chart's context menu can override it)"
        )
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter charts: loss, val/*, *acc*")
        self.filter.setClearButtonEnabled(True)
        self.filter.setToolTip(
            "Show only the charts whose key matches a word (a substring, or a glob with * ? [ ]); "
            "case-insensitive"
        )
        self.group_by = QComboBox()
        self.group_by.addItem("No grouping", "")
        self.group_by.setToolTip(
            "Group the runs by a config key: each group's mean with its min-max band"
        )
        self.group_by.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.follow = QToolButton()
        self.follow.setText("Follow")
        self.follow.setCheckable(True)
        self.follow.setChecked(True)
        self.follow.setToolTip(
            "Keep the newest data in view. Zooming or panning turns it off; "
            "double-click a chart to turn it on again."
        )

        rows = QVBoxLayout(self)
        rows.setContentsMargins(4, 2, 4, 2)
        rows.setSpacing(2)
        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        controls = (self.smoothing, self.weight, self.ma_window, QLabel("x:"), self.x_mode)
        for widget in (*controls, self.log_y, self.log_x, self.outliers):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.follow)
        second = QHBoxLayout()
        second.setContentsMargins(0, 0, 0, 0)
        second.addWidget(self.filter, 1)
        second.addWidget(QLabel("Group by:"))
        second.addWidget(self.group_by)
        rows.addLayout(layout)
        rows.addLayout(second)

        self.smoothing.currentIndexChanged.connect(self._emit_smoothing)
        self.weight.valueChanged.connect(self._emit_smoothing)
        self.ma_window.valueChanged.connect(self._emit_smoothing)
        self.x_mode.currentIndexChanged.connect(self._emit_x_mode)
        self.log_y.toggled.connect(self.logYChanged)
        self.log_x.toggled.connect(self.logXChanged)
        self.follow.toggled.connect(self.followChanged)
        self.outliers.toggled.connect(self.outliersChanged)
        self.filter.textChanged.connect(self.filterChanged)
        self.group_by.currentIndexChanged.connect(
            lambda _i: self.groupByChanged.emit(str(self.group_by.currentData() or ""))
        )
        self._show_value_box()

    # ------------------------------------------------------------------ setters (no signals)
    def show_smoothing(self, kind: str, value: float) -> None:
        """Show a smoothing setting."""
        blockers = [QSignalBlocker(w) for w in (self.smoothing, self.weight, self.ma_window)]
        self.smoothing.setCurrentIndex(max(self.smoothing.findData(kind), 0))
        if kind == "ema":
            self.weight.setValue(value)
        elif kind in ("ma", "cma"):
            self.ma_window.setValue(int(value))
        del blockers
        self._show_value_box()

    def show_x_mode(self, mode: str) -> None:
        """Show an x mode; log x is off and disabled for wall time."""
        with QSignalBlocker(self.x_mode):
            self.x_mode.setCurrentIndex(max(self.x_mode.findData(mode), 0))
        self.log_x.setEnabled(mode != "wall")

    def show_log(self, log_x: bool, log_y: bool) -> None:
        """Show the log scale settings."""
        with QSignalBlocker(self.log_x), QSignalBlocker(self.log_y):
            self.log_x.setChecked(log_x)
            self.log_y.setChecked(log_y)

    def show_outliers(self, on: bool) -> None:
        """Show whether outliers are ignored."""
        with QSignalBlocker(self.outliers):
            self.outliers.setChecked(on)

    def show_group_keys(self, keys: list[str], current: str) -> None:
        """Offer ``keys`` to group by, with ``current`` ("" for none) chosen."""
        with QSignalBlocker(self.group_by):
            self.group_by.clear()
            self.group_by.addItem("No grouping", "")
            for key in keys:
                self.group_by.addItem(key, key)
            self.group_by.setCurrentIndex(max(self.group_by.findData(current), 0))

    def show_follow(self, on: bool) -> None:
        """Show whether the charts follow the newest data."""
        with QSignalBlocker(self.follow):
            self.follow.setChecked(on)

    # ------------------------------------------------------------------ internals
    def _show_value_box(self) -> None:
        kind = self.smoothing.currentData()
        self.weight.setVisible(kind == "ema")
        self.ma_window.setVisible(kind in ("ma", "cma"))

    def _emit_smoothing(self) -> None:
        self._show_value_box()
        kind = str(self.smoothing.currentData())
        if kind == "ema":
            value = self.weight.value()
        elif kind in ("ma", "cma"):
            value = float(self.ma_window.value())
        else:
            value = 0.0
        self.smoothingChanged.emit(kind, value)

    def _emit_x_mode(self) -> None:
        self.xModeChanged.emit(str(self.x_mode.currentData()))
