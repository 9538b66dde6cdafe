"""A collapsible group of charts (one per metric namespace), laid out in a grid of columns.

The panel sets the number of columns from the width it has (:func:`columns_for`); a key
filter hides the charts whose key does not match it (:func:`desktop_app.charts.rules.key_matches`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QToolButton, QVBoxLayout, QWidget

from desktop_app.charts.plot import MetricPlot
from desktop_app.charts.rules import key_matches

MIN_CHART_WIDTH = 300  # a chart is at least this wide: the width sets the number of columns
MAX_COLUMNS = 6
GRID_SPACING = 6


def columns_for(width: int) -> int:
    """How many columns of charts fit in ``width`` pixels (1 to :data:`MAX_COLUMNS`)."""
    return max(1, min(MAX_COLUMNS, width // MIN_CHART_WIDTH))


class ChartGroup(QWidget):
    """A header button that collapses the group, above its charts in ``columns`` columns."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.plots: dict[str, MetricPlot] = {}
        self.columns = 2
        self.chart_width: int | None = None  # every chart's width, set by the panel
        self.pattern = ""  # the key filter
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
        self.grid.setSpacing(GRID_SPACING)
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

    @property
    def shown(self) -> list[MetricPlot]:
        """The charts that match the key filter, in grid order."""
        return [plot for key, plot in self.plots.items() if key_matches(key, self.pattern)]

    def set_filter(self, pattern: str) -> None:
        """Show only the charts whose key matches ``pattern`` (empty: all)."""
        if pattern != self.pattern:
            self.pattern = pattern
            self._relayout()

    def set_columns(self, columns: int, chart_width: int | None = None) -> None:
        """Lay the charts out in ``columns`` columns, each chart ``chart_width`` pixels wide
        (the same in every group, so that a column's charts line up to the pixel)."""
        columns = max(columns, 1)
        if chart_width != self.chart_width:
            self.chart_width = chart_width
            for plot in self.plots.values():
                self._size(plot)
        if columns != self.columns:
            self.columns = columns
            self._relayout()

    def _size(self, plot: MetricPlot) -> None:
        if self.chart_width is not None:
            plot.setFixedWidth(self.chart_width)

    def _relayout(self) -> None:
        for plot in self.plots.values():
            self.grid.removeWidget(plot)
        shown = self.shown
        for i, plot in enumerate(shown):
            self._size(plot)
            self.grid.addWidget(
                plot, i // self.columns, i % self.columns, Qt.AlignmentFlag.AlignLeft
            )
            if plot.isHidden():
                plot.show()
                plot.dirty = True
        for plot in self.plots.values():
            if plot not in shown:
                plot.hide()
        for column in range(max(self.grid.columnCount(), self.columns)):
            self.grid.setColumnStretch(column, 1 if column < self.columns else 0)
        self._update_header()
        self.setVisible(bool(shown))

    def _update_header(self) -> None:
        count, shown = len(self.plots), len(self.shown)
        counted = f"{count} chart{'s' if count != 1 else ''}"
        if shown != count:
            counted = f"{shown} of {counted}"
        self.header.setText(f"{self.name}  ({counted})")
