"""The "Config → result" tab: a result metric against one config key (a scatter) and against
several (parallel coordinates), one point or line per listed run in the run's colour.

A thin widget over :mod:`desktop_app.compare.scatter`. It draws the runs the table lists (the
filter applies), redrawing at most a few times a second and only while it is shown. Clicking
a point or a line emits :attr:`ConfigView.runClicked`; :meth:`ConfigView.set_selected`
outlines the runs selected in the table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.charts.chart_theme import chart_theme, current_chart_theme, style_chart
from desktop_app.compare.columns import Column, CompareColumns
from desktop_app.compare.scatter import Axis, Line, Point, Source, parallel, scatter
from desktop_app.settings.theme import Theme
from trainer.runs import RunSummary

REDRAW_MS = 250
POINT_SIZE = 11
SELECTED_SIZE = 17
#: Parallel coordinates start with this many of the differing config keys ticked.
DEFAULT_AXES = 6
RESULT_KINDS = ("best", "last", "final")
#: A log axis's ticks: the powers of ten, then 2x and 5x them (fewer when they crowd).
LOG_TICKS = (1, 2, 5)


class _Ticks(pg.AxisItem):
    """Tick labels from an :class:`Axis` (categories by name, a log axis as its values)."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.axis: Axis | None = None
        # The labels are the values themselves: no "(x0.001)" beside the axis name.
        self.enableAutoSIPrefix(False)

    def set_axis(self, axis: Axis | None) -> None:
        self.axis = axis
        if axis is not None and axis.kind == "categorical":
            self.setTicks([[(float(n), c) for n, c in enumerate(axis.categories)]])
        else:
            self.setTicks(None)
        self.picture = None
        self.update()

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:
        """On a log axis: ticks at 1, 2 and 5 times the powers of ten (not pyqtgraph's evenly
        spaced log10 values, which read 0.0794, 0.0631, ...)."""
        if self.axis is None or self.axis.kind != "log" or not maxVal > minVal:
            return list(super().tickValues(minVal, maxVal, size))
        decades = range(math.floor(minVal), math.ceil(maxVal) + 1)
        levels = [[float(k) + math.log10(m) for k in decades] for m in LOG_TICKS]
        return [(1.0, [v for v in level if minVal <= v <= maxVal]) for level in levels]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.axis is None or self.axis.kind == "categorical":
            return list(super().tickStrings(values, scale, spacing))
        return [self.axis.label(v) for v in values]


class ConfigView(QWidget):
    """Scatter and parallel coordinates of the listed runs: config keys against a result."""

    #: A run's folder path, when its point or line is clicked.
    runClicked = Signal(str)

    def __init__(
        self,
        compare: CompareColumns,
        runs: Callable[[], Sequence[RunSummary]],
        colour: Callable[[str], str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.compare = compare
        self._runs = runs
        self._colour = colour
        self._selected: set[str] = set()
        #: What the scatter and the parallel plot show now (for tests).
        self.points: list[Point] = []
        self.lines: list[Line] = []
        self.axes: list[Axis] = []
        self._line_items: list[pg.PlotCurveItem] = []
        self._labels: list[pg.TextItem] = []
        self._axis_keys: list[str] | None = None  # None: the default (differing keys)

        self.x_key = QComboBox()
        self.x_key.setMinimumContentsLength(14)
        self.y_metric = QComboBox()
        self.y_metric.setMinimumContentsLength(14)
        self.kind = QComboBox()
        self.kind.addItems(RESULT_KINDS)
        for combo in (self.x_key, self.y_metric, self.kind):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentTextChanged.connect(lambda _text: self.schedule())
        self.message = QLabel()
        self.message.setStyleSheet("color: #6b7280; padding: 0 6px;")
        bar = QHBoxLayout()
        self._x_widgets: list[QWidget] = []
        for text, widget in (("x", self.x_key), ("y", self.y_metric), ("value", self.kind)):
            label = QLabel(text)
            bar.addWidget(label)
            bar.addWidget(widget)
            if widget is self.x_key:
                self._x_widgets += [label, widget]
        bar.addWidget(self.message, 1)

        colours = self._colours = current_chart_theme()
        self._x_ticks = _Ticks("bottom")
        self._y_ticks = _Ticks("left")
        self.scatter_plot = pg.PlotWidget(
            axisItems={"bottom": self._x_ticks, "left": self._y_ticks}
        )
        style_chart(self.scatter_plot, colours)
        self.scatter_plot.showGrid(x=True, y=True, alpha=0.3)
        self.scatter_item = pg.ScatterPlotItem(size=POINT_SIZE, pxMode=True, hoverable=True,
                                               tip=self._tip)  # fmt: skip
        self.scatter_item.sigClicked.connect(self._on_points_clicked)
        self.scatter_plot.addItem(self.scatter_item)

        self.parallel_plot = pg.PlotWidget()
        style_chart(self.parallel_plot, colours)
        self.parallel_plot.hideAxis("left")
        self.parallel_plot.hideAxis("bottom")
        self.parallel_plot.setMouseEnabled(x=False, y=False)
        self.parallel_plot.getPlotItem().hideButtons()
        self.axis_list = QListWidget()
        self.axis_list.setMaximumWidth(200)
        self.axis_list.itemChanged.connect(self._on_axis_ticked)
        parallel_page = QSplitter(Qt.Orientation.Horizontal)
        parallel_page.addWidget(self.parallel_plot)
        parallel_page.addWidget(self.axis_list)
        parallel_page.setStretchFactor(0, 1)

        self.pages = QTabWidget()
        self.pages.addTab(self.scatter_plot, "Scatter")
        self.pages.addTab(parallel_page, "Parallel coordinates")
        self.pages.currentChanged.connect(self._on_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.pages, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)

    # ------------------------------------------------------------------ public API
    def schedule(self) -> None:
        """Redraw soon (several changes in a row make one redraw)."""
        if not self._timer.isActive():
            self._timer.start()

    def set_theme(self, theme: Theme) -> None:
        """Restyle both plots for an app theme (light or dark) and redraw."""
        self._colours = chart_theme(theme)
        for plot in (self.scatter_plot, self.parallel_plot):
            style_chart(plot, self._colours)
        self._paint_selection()
        self.schedule()

    def set_selected(self, paths: Sequence[str]) -> None:
        """Outline the runs at ``paths`` (the table's selection)."""
        if set(paths) != self._selected:
            self._selected = set(paths)
            self._paint_selection()

    def stop(self) -> None:
        self._timer.stop()

    def redraw(self) -> None:
        """Draw the listed runs now (skipped while the tab is hidden: shown, it redraws)."""
        if not self.isVisible():
            return
        self._fill_choices()
        runs = list(self._runs())
        x_key, metric = self.x_key.currentText(), self.y_metric.currentText()
        if not x_key or not metric:
            self.message.setText("Needs runs with config keys and logged metrics.")
            self._clear()
            return
        kind = self.kind.currentText()
        if kind == "best" and metric not in self.compare.metrics():
            kind = "last"  # best values are read for the compared metrics only
        self.message.setText(
            "" if kind == self.kind.currentText()
            else f"best of {metric} is read once it is compared (table header menu)"
        )  # fmt: skip
        column = Column(kind, metric)  # type: ignore[arg-type]
        source = Source(
            config=lambda run, key: self.compare.config(run).get(key),
            result=lambda run: _finite(self.compare.value(run, column)),
            colour=lambda run: self._colour(run.path),
        )
        title = f"{metric} ({kind})"
        if self.pages.currentIndex() == 0:
            self._draw_scatter(*scatter(runs, x_key, title, source))
        else:
            self._draw_parallel(*parallel(runs, self._parallel_keys(), title, source))

    # ------------------------------------------------------------------ drawing
    def _draw_scatter(self, points: list[Point], x_axis: Axis, y_axis: Axis) -> None:
        self.points = points
        self._x_ticks.set_axis(x_axis)
        self._y_ticks.set_axis(y_axis)
        self.scatter_plot.setLabel("bottom", x_axis.name)
        self.scatter_plot.setLabel("left", y_axis.name)
        self.scatter_item.setData(
            x=np.array([p.x for p in points], dtype=float),
            y=np.array([p.y for p in points], dtype=float),
            data=[p.path for p in points],
            brush=[pg.mkBrush(p.colour) for p in points],
        )
        self._paint_selection()
        self.scatter_plot.getPlotItem().enableAutoRange()

    def _draw_parallel(self, lines: list[Line], axes: list[Axis]) -> None:
        plot = self.parallel_plot
        self.lines, self.axes = lines, axes
        for item in [*self._line_items, *self._labels]:
            plot.removeItem(item)
        self._line_items, self._labels = [], []
        colours = self._colours
        for n, axis in enumerate(axes):
            rule = pg.PlotCurveItem([n, n], [0, 1], pen=pg.mkPen(colours.axis))
            plot.addItem(rule)
            self._labels.append(rule)
            for y, text, anchor in ((1.0, axis.name, (0.5, 1.6)),
                                    (1.0, axis.label(axis.high), (0.5, 1.0)),
                                    (0.0, axis.label(axis.low), (0.5, 0.0))):  # fmt: skip
                label = pg.TextItem(text, color=colours.text, anchor=anchor)
                label.setPos(n, y)
                plot.addItem(label)
                self._labels.append(label)
        xs = np.arange(len(axes), dtype=float)
        for line in lines:
            ys = np.array([np.nan if y is None else y for y in line.ys], dtype=float)
            item = pg.PlotCurveItem(xs, ys, connect="finite", clickable=True)
            item.setToolTip(line.name)
            item.sigClicked.connect(lambda _item, _ev, path=line.path: self.runClicked.emit(path))
            plot.addItem(item)
            self._line_items.append(item)
        self._paint_selection()
        plot.setXRange(-0.3, max(len(axes) - 0.7, 0.3), padding=0)
        plot.setYRange(-0.08, 1.18, padding=0)

    def _paint_selection(self) -> None:
        if self.points:
            chosen = [p.path in self._selected for p in self.points]
            self.scatter_item.setSize([SELECTED_SIZE if c else POINT_SIZE for c in chosen])
            pens = [pg.mkPen(self._colours.text, width=2) if c else pg.mkPen(p.colour)
                    for c, p in zip(chosen, self.points, strict=True)]  # fmt: skip
            self.scatter_item.setPen(pens)
        for line, item in zip(self.lines, self._line_items, strict=False):
            on = line.path in self._selected
            item.setPen(pg.mkPen(line.colour, width=3 if on else 1))
            item.setZValue(10 if on else 0)

    def _clear(self) -> None:
        self.points, self.lines = [], []
        self.scatter_item.clear()
        for item in [*self._line_items, *self._labels]:
            self.parallel_plot.removeItem(item)
        self._line_items, self._labels = [], []

    # ------------------------------------------------------------------ choices
    def _fill_choices(self) -> None:
        keys = self.compare.differing + [
            k for k in self.compare.config_keys if k not in self.compare.differing
        ]
        fresh = self.x_key.count() == 0
        _set_items(self.x_key, keys)
        if fresh and self.compare.differing:  # start with the key the sweep varied most
            runs = list(self._runs())
            spread = {k: len({repr(self.compare.config(r).get(k)) for r in runs})
                      for k in self.compare.differing}  # fmt: skip
            self.x_key.setCurrentText(max(self.compare.differing, key=lambda k: spread[k]))
        metrics = list(self.compare.metrics()) + [
            k for k in self.compare.metric_keys if k not in self.compare.metrics()
        ]
        _set_items(self.y_metric, metrics)
        wanted = self._parallel_keys()
        current = [self.axis_list.item(n).text() for n in range(self.axis_list.count())]
        if current != keys:
            self.axis_list.blockSignals(True)
            self.axis_list.clear()
            for key in keys:
                item = QListWidgetItem(key)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if key in wanted else Qt.CheckState.Unchecked
                )
                self.axis_list.addItem(item)
            self.axis_list.blockSignals(False)

    def _on_page(self, page: int) -> None:
        for widget in self._x_widgets:
            widget.setVisible(page == 0)  # parallel coordinates have their own list of keys
        self.schedule()

    def _parallel_keys(self) -> list[str]:
        if self._axis_keys is not None:
            return [k for k in self._axis_keys if k in self.compare.config_keys]
        return self.compare.differing[:DEFAULT_AXES]

    def set_parallel_keys(self, keys: Sequence[str]) -> None:
        """The config keys parallel coordinates show, in this order (then the result)."""
        self._axis_keys = list(keys)
        self.schedule()

    def _on_axis_ticked(self, _item: QListWidgetItem) -> None:
        ticked = [self.axis_list.item(n) for n in range(self.axis_list.count())]
        self.set_parallel_keys(
            [i.text() for i in ticked if i.checkState() == Qt.CheckState.Checked]
        )

    def _on_points_clicked(self, _item: Any, points: Any, _ev: Any = None) -> None:
        if len(points):
            self.runClicked.emit(str(points[0].data()))

    def _tip(self, x: float, y: float, data: Any) -> str:
        name = next((p.name for p in self.points if p.path == data), str(data))
        return f"{name}\n{self._x_ticks.axis.label(x) if self._x_ticks.axis else x}: {y:.4g}"

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.schedule()


def _set_items(combo: QComboBox, items: list[str]) -> None:
    """Give ``combo`` these items, keeping its current choice if it is still there."""
    if [combo.itemText(n) for n in range(combo.count())] == items:
        return
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    if current in items:
        combo.setCurrentText(current)
    combo.blockSignals(False)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if np.isfinite(value) else None
