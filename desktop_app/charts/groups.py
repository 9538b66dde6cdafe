"""A collapsible group of charts (one per metric namespace), laid out in a grid of columns."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QToolButton, QVBoxLayout, QWidget

from desktop_app.charts.plot import MetricPlot

MIN_CHART_WIDTH = 420  # below this a chart gets a row of its own


class ChartGroup(QWidget):
    """A header button that collapses the group, above its charts in ``columns`` columns."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.plots: dict[str, MetricPlot] = {}
        self.columns = 2
        self.header = QToolButton()
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.DownArrow)
        self.header.setAutoRaise(True)
        self.header.setStyleSheet("QToolButton { font-weight: bold; border: none; }")
        self.header.toggled.connect(self.set_expanded)
        self.body = QWidget()
        self.grid = QGridLayout(self.body)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        self._update_header()

    @property
    def expanded(self) -> bool:
        """True while the group's charts are shown."""
        return self.header.isChecked()

    def set_expanded(self, expanded: bool) -> None:
        """Show or hide the group's charts (hidden charts are not redrawn)."""
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # comes back here through toggled
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
        for plot in self.plots.values():
            plot.dirty = True

    def add_plot(self, plot: MetricPlot) -> None:
        """Add a chart; charts stay sorted by key."""
        self.plots[plot.key] = plot
        self.plots = dict(sorted(self.plots.items()))
        self._relayout()

    def remove_plot(self, key: str) -> MetricPlot | None:
        """Take a chart out of the group (the caller deletes it)."""
        plot = self.plots.pop(key, None)
        if plot is not None:
            self.grid.removeWidget(plot)
            self._relayout()
        return plot

    def set_columns(self, columns: int) -> None:
        """Lay the charts out in ``columns`` columns."""
        columns = max(columns, 1)
        if columns != self.columns:
            self.columns = columns
            self._relayout()

    def _relayout(self) -> None:
        for plot in self.plots.values():
            self.grid.removeWidget(plot)
        for i, plot in enumerate(self.plots.values()):
            self.grid.addWidget(plot, i // self.columns, i % self.columns)
        for column in range(max(self.grid.columnCount(), self.columns)):
            self.grid.setColumnStretch(column, 1 if column < self.columns else 0)
        self._update_header()

    def _update_header(self) -> None:
        count = len(self.plots)
        self.header.setText(f"{self.name}  ({count} chart{'s' if count != 1 else ''})")
