"""One metric's chart: a pyqtgraph plot with persistent items per run, redrawn on demand.

For every selected run the plot keeps up to three items, created once and updated with
``setData``: the raw curve (faint while a smoothing applies), the smoothed curve on top and the
event marks (made when the run first has one). :meth:`MetricPlot.redraw` asks the Qt-free
:class:`~desktop_app.charts.model.Curve` for the points of the current view and calls
``setData`` only for items whose inputs changed. Runs grouped by a config key are drawn
instead as each group's mean and min-max band (:mod:`~desktop_app.charts.bands`).

A chart may override the toolbar's log y and "ignore outliers" and the smoothing rule (its
context menu, :meth:`MetricPlot.set_options`); its title then says so.

Why over 400 lines: one chart's items, y range, crosshair readout and own options all read the
same per-run drawing state; the rules, the group bands and the colours are their own modules.
"""

from __future__ import annotations

import dataclasses
import html
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QSignalBlocker, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QFontMetricsF,
    QMouseEvent,
    QResizeEvent,
)
from PySide6.QtWidgets import QGraphicsItem, QMenu, QToolButton, QWidget

from desktop_app.charts.aggregate import GroupSpec
from desktop_app.charts.axes import XAxis, YAxis, format_x
from desktop_app.charts.bands import GroupBands
from desktop_app.charts.chart_theme import ChartTheme, box_brush, current_chart_theme, style_chart
from desktop_app.charts.curve_item import RunCurve
from desktop_app.charts.model import (
    EVENT_SYMBOLS,
    ChartsModel,
    Curve,
    EnvelopeRequest,
    RunData,
)
from desktop_app.charts.readout import SMALL_READOUT, Value, fit_rows
from desktop_app.charts.rules import smooth_by_default, value_at_or_before, y_range
from desktop_app.charts.series import search

#: Distinct, colour-blind-friendly run colours (Tableau 10), assigned in selection order.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
RAW_ALPHA = 60  # of 255: the raw curve behind a smoothed one
CHART_HEIGHT = 190
READOUT_PT = 8  # the crosshair readout's font size
Y_PADDING = 0.05  # of the y span, above and below the data while following
#: A fitted y range is kept while the data stays inside it and spans at least 1/Y_SLACK of it.
Y_SLACK = 1.5

#: More checkpoints than this in one run: only the newest is marked on its curves.
MAX_CHECKPOINT_MARKS = 40


@dataclass(frozen=True)
class DrawContext:
    """What every plot needs to draw: the data and the panel's display settings."""

    model: ChartsModel
    colors: dict[Path, QColor]
    x_mode: str = "step"
    log_x: bool = False
    log_y: bool = False
    follow: bool = True  # fit the y axes to the data
    #: Called with (run folder, key, request) when a long curve needs a viewport read.
    request: Callable[[Path, str, EnvelopeRequest], None] | None = None
    #: Fit y to the 1st-99th percentile of what is drawn (see desktop_app.charts.rules).
    ignore_outliers: bool = False
    #: Runs grouped by a config key: each group's mean and band instead of the runs (steps).
    groups: tuple[GroupSpec, ...] = ()


@dataclass
class _RunItems:
    """The persistent items of one run in one plot, and what they were last drawn from."""

    raw: RunCurve
    smooth: RunCurve
    color: QColor
    marks: pg.ScatterPlotItem | None = None  # made when the run first has a mark here
    drawn: dict[str, Any] = field(default_factory=dict)  # item name -> inputs of its setData
    bounds: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    ys: dict[str, np.ndarray] = field(default_factory=dict)  # item name -> y drawn
    xs: dict[str, np.ndarray] = field(default_factory=dict)  # item name -> x drawn (data)


def _to_view(
    xs: np.ndarray, ys: np.ndarray, log_x: bool, log_y: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Points in the view's coordinates: log10 on a log axis (where the value is not
    positive, a gap). The curve items take view coordinates; pyqtgraph's log mode only
    converts for PlotDataItem, which costs several times more per setData and to make."""
    if not (log_x or log_y):
        return xs, ys
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_x:
            xs = np.where(xs > 0, np.log10(xs), np.nan)
        if log_y:
            ys = np.where(ys > 0, np.log10(ys), np.nan)
    return xs, ys


def _bounds(ys: np.ndarray) -> tuple[float, float, float] | None:
    """(lowest, highest, lowest positive) finite value of ``ys``; None if it has none."""
    finite = ys[np.isfinite(ys)]
    if not len(finite):
        return None
    positive = finite[finite > 0]
    low_positive = float(positive.min()) if len(positive) else math.inf
    return float(finite.min()), float(finite.max()), low_positive


def _mark_tip(x: float, y: float, data: Any) -> str:
    return str(data)


class MetricPlot(pg.PlotWidget):
    """The chart of one metric key for all selected runs."""

    #: (plot, x in view coordinates) while the mouse moves over the plot area; (plot, None)
    #: when it leaves.
    hovered = Signal(object, object)
    #: A double click on the plot: follow the newest data again.
    followRequested = Signal()
    #: The chart's own options changed (:meth:`set_options`): (plot).
    optionsChanged = Signal(object)

    _dirty = True
    on_dirty: Callable[[], None] | None = None

    def __init__(
        self, key: str, parent: QWidget | None = None, colours: ChartTheme | None = None
    ) -> None:
        self.axis = XAxis()
        self.colours = colours or current_chart_theme()
        super().__init__(
            parent, background=self.colours.background, enableMenu=False,
            axisItems={"bottom": self.axis, "left": YAxis()},
        )  # fmt: skip
        self.key = key
        #: This chart's own log y and "ignore outliers" (None: the toolbar's) and smoothing
        #: (None: the rule's, see desktop_app.charts.rules.smooth_by_default).
        self.log_y: bool | None = None
        self.ignore_outliers: bool | None = None
        self.smooth: bool | None = None
        self._shown_as: tuple[bool, bool] = (False, False)  # (log y, outliers) last drawn
        self._model: ChartsModel | None = None
        #: Called when the chart becomes dirty (the panel wakes its display timer).
        self.on_dirty = None
        self._dirty = True
        self._items: dict[Path, _RunItems] = {}
        #: The (folder, name) of the runs drawn, in legend order.
        self.shown_runs: list[tuple[Path, str]] = []
        self._legend_runs: list[tuple[str, str]] | None = None  # what the legend lists
        self._log = (False, False)
        self.setMinimumHeight(CHART_HEIGHT)
        self.setMaximumHeight(CHART_HEIGHT)
        self.setMinimumWidth(260)

        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False, False)
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.enableAutoSIPrefix(False)
            # An opaque grid (major and minor ticks alike): pyqtgraph's translucent one costs about
            # 10 ms per paint of each chart (blended lines are slow in Qt's raster engine).
            axis.setStyle(tickAlpha=255, maxTickLevel=1)
            axis.setGrid(255)
            axis.setZValue(-1)  # pyqtgraph puts axes, grid included, above the curves
            # The axis and its grid span the plot, so every new point of a live curve repaints
            # them: cached as a pixmap, that is a copy until the range or the ticks change.
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.vb: pg.ViewBox = item.getViewBox()
        self.vb.disableAutoRange()  # the panel sets x, _fit_y sets y
        self._y_range: tuple[float, float] | None = None
        self.legend = item.addLegend(
            offset=(-6, 4), labelTextSize="8pt", verSpacing=-6,
        )  # fmt: skip
        self.legend.hide()  # the panel shows one legend for all charts; exports show this one
        self.crosshair = pg.InfiniteLine(angle=90, movable=False)
        self.crosshair.setZValue(10)
        self.crosshair.hide()
        item.addItem(self.crosshair, ignoreBounds=True)
        # A dot on each curve where the crosshair crosses it (view coordinates: added to the
        # view box, so pyqtgraph's log mode does not transform them again).
        self.value_dots = pg.ScatterPlotItem(size=7, pxMode=True, pen=pg.mkPen("w", width=1))
        self.value_dots.setZValue(11)
        self.value_dots.hide()
        self.vb.addItem(self.value_dots, ignoreBounds=True)
        # The readout lives in the view box's pixels, above the curves, next to the mouse.
        self.readout = pg.TextItem(anchor=(0, 0))
        self.readout.setParentItem(self.vb)
        self.readout.setZValue(1000)
        self.readout.hide()
        self._mouse = QPointF()
        self._hovered_here = False
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.bands = GroupBands(item, key)
        self.menu = QMenu(self)
        self._actions = {
            "log_y": self.menu.addAction("Log y"),
            "ignore_outliers": self.menu.addAction("Ignore outliers"),
            "smooth": self.menu.addAction("Smooth"),
        }
        for name, action in self._actions.items():
            action.setCheckable(True)
            action.toggled.connect(lambda on, name=name: self.set_options(**{name: on}))
        self.menu.addSeparator()
        self.menu.addAction("Use the toolbar's settings").triggered.connect(
            lambda: self.set_options(log_y=None, ignore_outliers=None, smooth=None)
        )
        # The same menu from a small button in the top right corner, for those who do not
        # think of right-clicking a chart.
        self.options_button = QToolButton(self)
        self.options_button.setArrowType(Qt.ArrowType.DownArrow)
        self.options_button.setAutoRaise(True)
        self.options_button.setFixedSize(18, 18)
        self.options_button.setToolTip("This chart's log y, outliers and smoothing")
        self.options_button.clicked.connect(self.show_menu)
        self.options_button.move(self.width() - self.options_button.width() - 4, 4)
        self.set_colours(self.colours)

    # ------------------------------------------------------------------ look and options
    def set_colours(self, colours: ChartTheme) -> None:
        """Restyle the chart for a light or dark theme."""
        self.colours = colours
        style_chart(self, colours)
        self.legend.setBrush(box_brush(colours, 200))
        self.legend.setPen(pg.mkPen(colours.border))
        self.legend.setLabelTextColor(colours.text)
        self._legend_runs = None
        if self.legend.isVisible():
            self._fill_legend()
        self.crosshair.setPen(pg.mkPen(colours.axis, width=1, style=Qt.PenStyle.DashLine))
        self.readout.fill = box_brush(colours, 235)
        self.readout.border = pg.mkPen(colours.border)
        self.readout.update()
        self._update_title()

    _UNSET: Any = object()

    def set_options(
        self, *, log_y: Any = _UNSET, ignore_outliers: Any = _UNSET, smooth: Any = _UNSET
    ) -> None:
        """This chart's own log y, "ignore outliers" and smoothing: True or False, or None to
        follow the toolbar (the smoothing rule for ``smooth``). Emits :attr:`optionsChanged`."""
        before = (self.log_y, self.ignore_outliers, self.smooth)
        if log_y is not self._UNSET:
            self.log_y = log_y
        if ignore_outliers is not self._UNSET:
            self.ignore_outliers = ignore_outliers
        if smooth is not self._UNSET:
            self.smooth = smooth
        if (self.log_y, self.ignore_outliers, self.smooth) == before:
            return
        self._y_range = None
        self.dirty = True
        self._update_title()
        self.optionsChanged.emit(self)

    def smoothed_by_choice(self) -> bool:
        """Whether this chart is to be smoothed (when a smoothing is chosen in the toolbar)."""
        return smooth_by_default(self.key) if self.smooth is None else self.smooth

    def _update_title(self) -> None:
        flags = []
        if self.log_y is not None:
            flags.append("log y" if self.log_y else "linear y")
        if self.ignore_outliers is not None:
            flags.append("outliers ignored" if self.ignore_outliers else "all values")
        if self.smooth is not None:
            flags.append("smoothed" if self.smooth else "not smoothed")
        title = html.escape(self.key)
        if flags:
            muted = self.colours.muted
            title += f" <span style='color:{muted}; font-size:8pt'>({', '.join(flags)})</span>"
        label = self.getPlotItem().titleLabel
        self.getPlotItem().setTitle(title, color=self.colours.text, size="10pt")
        # Laid out text costs a sixth of a chart's repaint; as a pixmap it is a blit (Qt
        # renders it again when the text changes).
        label.item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def show_menu(self) -> None:
        """Open the chart's options under its corner button (non-modal)."""
        self.menu_state()
        self.menu.popup(self.options_button.mapToGlobal(self.options_button.rect().bottomLeft()))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        button = self.__dict__.get("options_button")  # None while __init__ runs
        if button is not None:
            button.move(self.width() - button.width() - 4, 4)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.menu_state()
        self.menu.popup(event.globalPos())  # not exec(): no nested event loop under qasync
        event.accept()

    def menu_state(self) -> dict[str, bool]:
        """Tick the context menu's options as the chart is drawn now; returns them."""
        state = {
            "log_y": self._shown_as[0],
            "ignore_outliers": self._shown_as[1],
            "smooth": self.smoothed_by_choice(),
        }
        for name, action in self._actions.items():
            with QSignalBlocker(action):
                action.setChecked(state[name])
        return state

    # ------------------------------------------------------------------ runs
    @property
    def runs(self) -> list[Path]:
        """The runs this plot has items for, in legend order."""
        return list(self._items)

    def items_of(
        self, folder: Path
    ) -> tuple[pg.PlotCurveItem, pg.PlotCurveItem, pg.ScatterPlotItem]:
        """The (raw, smoothed, marks) items of a run."""
        items = self._items[folder]
        return items.raw, items.smooth, self._marks_item(items)

    def sync_runs(
        self,
        runs: list[tuple[Path, str]],
        colors: dict[Path, QColor],
        deadline: float | None = None,
    ) -> bool:
        """Keep items for the runs of ``runs`` that have this key, in that order.

        With ``deadline`` (a :func:`time.perf_counter` time), stop making items once it has
        passed (one at least): :attr:`shown_runs` then lists the runs that have theirs, and
        False is returned (call again to go on); True once every run has its items."""
        wanted = [folder for folder, _ in runs]
        for folder in [f for f in self._items if f not in wanted]:
            items = self._items.pop(folder)
            for each in (items.raw, items.smooth, items.marks):
                if each is not None:
                    self.getPlotItem().removeItem(each)
        made = 0
        for folder, _name in runs:
            if folder not in self._items:
                if made and deadline is not None and time.perf_counter() > deadline:
                    break
                self._items[folder] = self._new_items(colors[folder])
                made += 1
        self._items = {f: self._items[f] for f in wanted if f in self._items}
        self.shown_runs = [(folder, name) for folder, name in runs if folder in self._items]
        self._legend_runs = None  # filled when shown: many runs' entries cost a lot to lay out
        if self.legend.isVisible():
            self._fill_legend()
        self.dirty = True
        return len(self.shown_runs) == len(runs)

    def _fill_legend(self) -> None:
        """The runs, or while they are grouped the groups, each in its colour."""
        if self.bands.active:
            wanted = [(f"{spec.label} ({len(spec.runs)} run{'s' if len(spec.runs) != 1 else ''})",
                       spec.color) for spec in self.bands.specs]  # fmt: skip
        else:
            wanted = [(name, self._items[folder].color.name()) for folder, name in self.shown_runs]
        if wanted == self._legend_runs:
            return
        self._legend_runs = wanted
        self.legend.clear()
        for name, color in wanted:
            self.legend.addItem(pg.PlotDataItem(pen=pg.mkPen(color, width=1)), name)

    def _new_items(self, color: QColor) -> _RunItems:
        # Plain curve items: a PlotDataItem is a curve and a scatter plus bookkeeping,
        # several times dearer to make and to update; NaN (a gap) breaks the line.
        raw = RunCurve(pen=pg.mkPen(color, width=1), connect="finite")
        smooth = RunCurve(pen=pg.mkPen(color, width=1), connect="finite")
        for z, each in enumerate((raw, smooth)):
            each.setZValue(z)
            self.getPlotItem().addItem(each)
        smooth.hide()
        return _RunItems(raw, smooth, QColor(color))

    def _marks_item(self, items: _RunItems) -> pg.ScatterPlotItem:
        if items.marks is None:
            items.marks = pg.ScatterPlotItem(size=9, hoverable=True, tip=_mark_tip, pxMode=True)
            items.marks.setZValue(2)
            items.marks.hide()
            self.getPlotItem().addItem(items.marks)
        return items.marks

    # ------------------------------------------------------------------ drawing
    def set_log(self, log_x: bool, log_y: bool) -> None:
        """Switch the axes (and the curves) to log scale."""
        if (log_x, log_y) != self._log:
            self._log = (log_x, log_y)
            self.getPlotItem().setLogMode(x=log_x, y=log_y)
            self.vb.disableAutoRange()  # setLogMode turns pyqtgraph's auto-range back on
            self._y_range = None  # other units: fit y again
            self.dirty = True

    def _own(self, ctx: DrawContext) -> DrawContext:
        """``ctx`` with this chart's own log y and "ignore outliers"."""
        log_y = ctx.log_y if self.log_y is None else self.log_y
        outliers = ctx.ignore_outliers if self.ignore_outliers is None else self.ignore_outliers
        if (log_y, outliers) == (ctx.log_y, ctx.ignore_outliers):
            return ctx
        return dataclasses.replace(ctx, log_y=log_y, ignore_outliers=outliers)

    @property
    def dirty(self) -> bool:
        """True when something the chart shows changed since it was last drawn."""
        return self._dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self._dirty = value
        if value and self.on_dirty is not None:
            self.on_dirty()

    def redraw(self, ctx: DrawContext) -> int:
        """Update the items whose inputs changed; returns how many ``setData`` calls it made."""
        self.dirty = False
        ctx = self._own(ctx)
        self._model = ctx.model
        if self._shown_as != (ctx.log_y, ctx.ignore_outliers):
            self._shown_as = (ctx.log_y, ctx.ignore_outliers)
            self._y_range = None
        self.axis.set_mode(ctx.x_mode)
        self.set_log(ctx.log_x, ctx.log_y)
        (x0, x1), _ = self.vb.viewRange()
        width = max(int(self.vb.width()), 50)
        smoothing = ctx.model.smoothing_of(self.key)
        groups = list(ctx.groups) if ctx.x_mode == "step" else []
        if groups != self.bands.specs:
            self.bands.sync(groups)
            self._y_range = None
        grouped = self.bands.active
        calls = 0
        for items in self._items.values():
            items.raw.setVisible(not grouped)
            if grouped:
                items.smooth.setVisible(False)
                if items.marks is not None:
                    items.marks.setVisible(False)
                    items.drawn.pop("marks-shown", None)
                    items.drawn.pop("marks", None)
        if grouped:
            calls += self.bands.redraw(ctx.model, (x0, x1), width, log_x=ctx.log_x)
            if ctx.follow or self._y_range is None:
                self._fit_y(ctx)
            return calls
        for folder, items in self._items.items():
            run = ctx.model.runs.get(folder)
            curve = run.curves.get(self.key) if run is not None else None
            if run is None or curve is None:
                continue
            smoothed = curve.smoothed
            where = (ctx.x_mode, run.origin, (x0, x1), width)
            if curve.history is not None and ctx.request is not None:
                shown = (10.0**x0, 10.0**x1) if ctx.log_x else (x0, x1)
                wanted = curve.wants(ctx.x_mode, run.origin, shown, width)
                if wanted is not None:
                    ctx.request(folder, self.key, wanted)
            view = (curve.version, ctx.log_x, ctx.log_y, *where)
            raw_pen = (smoothed, items.color.name())
            if items.drawn.get("raw-pen") != raw_pen:
                items.drawn["raw-pen"] = raw_pen
                faint = QColor(items.color)
                if smoothed:
                    faint.setAlpha(RAW_ALPHA)
                items.raw.setPen(pg.mkPen(faint, width=1))
            if items.drawn.get("raw") != view:
                items.drawn["raw"] = view
                xs, ys = curve.points(*where, smoothed=False, log_x=ctx.log_x)
                items.raw.setData(*_to_view(xs, ys, ctx.log_x, ctx.log_y))
                items.bounds["raw"] = _bounds(ys)
                items.xs["raw"], items.ys["raw"] = xs, ys
                calls += 1
            items.smooth.setVisible(smoothed)
            if smoothed and items.drawn.get("smooth") != (view, smoothing):
                items.drawn["smooth"] = (view, smoothing)
                xs, ys = curve.points(*where, smoothed=True, log_x=ctx.log_x)
                items.smooth.setData(*_to_view(xs, ys, ctx.log_x, ctx.log_y))
                items.bounds["smooth"] = _bounds(ys)
                items.xs["smooth"], items.ys["smooth"] = xs, ys
                calls += 1
            marks = (run.events_version, curve.version, ctx.x_mode, ctx.log_x, ctx.log_y)
            if items.drawn.get("marks") != (marks, smoothing, run.origin):
                items.drawn["marks"] = (marks, smoothing, run.origin)
                calls += self._draw_marks(items, run, ctx)
        if ctx.follow or self._y_range is None:
            self._fit_y(ctx)
        return calls

    def _fit_y(self, ctx: DrawContext) -> None:
        """Fit the y range to the drawn curves (they keep every extreme of the view), or to
        their bulk when outliers are ignored.

        Done here rather than by pyqtgraph's auto-range, which recomputes the bounds of every
        curve on every paint.
        """
        log_y = ctx.log_y
        if ctx.ignore_outliers or self.bands.active:
            if self.bands.active:
                arrays = self.bands.arrays()
            else:  # the raw values: a smoothed spike's echo is an outlier too
                arrays = [items.ys["raw"] for items in self._items.values() if "raw" in items.ys]
            fitted = y_range(arrays, log_y=log_y, ignore_outliers=ctx.ignore_outliers)
            if fitted is not None and self._y_range != fitted:
                self._y_range = fitted
                self.vb.setYRange(*fitted, padding=0)
            return
        lows, highs = [], []
        for items in self._items.values():
            for name in ("raw", "smooth") if items.smooth.isVisible() else ("raw",):
                bounds = items.bounds.get(name)
                if bounds is None:
                    continue
                low, high, low_positive = bounds
                if log_y:
                    if not math.isfinite(low_positive):
                        continue
                    low, high = math.log10(low_positive), math.log10(high)
                lows.append(low)
                highs.append(high)
        if not lows:
            return
        low, high = min(lows), max(highs)
        pad = (high - low) * Y_PADDING if high > low else max(abs(high) * 0.1, 0.5)
        target = (low - pad, high + pad)
        current = self._y_range
        if (
            current is not None
            and current[0] <= low
            and current[1] >= high
            and current[1] - current[0] <= Y_SLACK * (target[1] - target[0])
        ):
            # The data still fits with room to spare: a live curve creeping down (a loss)
            # moves the axis only once it has used up its padding, not on every point (a
            # new y range re-lays out the axis and its grid: most of an idle app's paint).
            return
        if self._y_range != target:
            self._y_range = target
            self.vb.setYRange(*target, padding=0)

    def _draw_marks(self, items: _RunItems, run: RunData, ctx: DrawContext) -> int:
        """Place the run's event marks; 1 if that took a ``setData``, 0 if nothing moved."""
        marks = run.marks(self.key, ctx.x_mode, smoothed=True)
        if not marks and items.marks is None:
            return 0  # most charts of most runs: nothing to place, nothing placed before
        checkpoints = [m for m in marks if m.kind == "checkpoint"]
        if len(checkpoints) > MAX_CHECKPOINT_MARKS:
            # A run that checkpoints often would bury its curve under diamonds: then only the
            # newest checkpoint (where a restart would begin) is marked; rare events always are.
            marks = [m for m in marks if m.kind != "checkpoint" or m is checkpoints[-1]]
        xs = np.array([m.x for m in marks], dtype=np.float64)
        ys = np.array([m.y for m in marks], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.log_x:
                xs = np.log10(xs)
            if ctx.log_y:
                ys = np.log10(ys)
        keep = np.isfinite(xs) & np.isfinite(ys)
        shown = [m for m, k in zip(marks, keep, strict=True) if k]
        key = (xs[keep].tobytes(), ys[keep].tobytes(), tuple(m.text for m in shown))
        if items.drawn.get("marks-shown") == key:
            return 0
        items.drawn["marks-shown"] = key
        if not shown and items.marks is None:
            return 0
        item = self._marks_item(items)
        item.setVisible(bool(shown))  # an empty scatter item still costs a paint
        item.setData(
            x=xs[keep], y=ys[keep],
            symbol=[EVENT_SYMBOLS[m.kind] for m in shown],
            data=[m.text for m in shown],
            brush=[pg.mkBrush("#dc2626" if m.kind == "error" else "w") for m in shown],
            pen=pg.mkPen(items.color, width=1),
        )  # fmt: skip
        return 1

    # ------------------------------------------------------------------ crosshair
    def show_crosshair(self, x: float | None, html: str = "") -> None:
        """Draw the vertical line at ``x`` (None hides it) and, if given, the value readout
        (next to the mouse on the hovered chart, in the top left corner on the others)."""
        if x is None or not math.isfinite(x):
            self.crosshair.hide()
            self.readout.hide()
            self.value_dots.hide()
            return
        self.crosshair.setPos(x)
        self.crosshair.show()
        if not html:
            self.readout.hide()
            return
        self.readout.setHtml(html)
        # Next to the mouse, on whichever side the readout fits inside the plot.
        size = self.readout.textItem.boundingRect()
        box = self.vb.boundingRect()
        gap = 12.0
        if not self._hovered_here:
            self.readout.setPos(QPointF(box.left() + 4, box.top() + 4))
            self.readout.show()
            return
        left = self._mouse.x() + gap
        if left + size.width() > box.right():
            left = max(box.left(), self._mouse.x() - gap - size.width())
        top = self._mouse.y() + gap
        if top + size.height() > box.bottom():
            top = max(box.top(), self._mouse.y() - gap - size.height())
        self.readout.setPos(QPointF(left, top))
        self.readout.show()

    def set_legend_visible(self, visible: bool) -> None:
        """Show the plot's own legend (for exports; the panel has a shared one)."""
        if visible:
            self._fill_legend()
        self.legend.setVisible(visible)

    def values_at(self, ctx: DrawContext, x: float) -> list[Value]:
        """The value at view x ``x`` of every run (each its last point at or before ``x``) or,
        while runs are grouped, of every group, with its readout row."""
        ctx = self._own(ctx)
        data_x = 10.0**x if ctx.log_x else x
        muted, values = self.colours.muted, []
        if self.bands.active:
            for spec, mean, low, high in self.bands.values_at(data_x):
                span = f" <span style='color:{muted}'>({low:.4g} to {high:.4g})</span>"
                label = html.escape(f"{spec.label} ({len(spec.runs)})")
                row = (f"<span style='color:{spec.color}'>&#9632;</span> {label}: "
                       f"{mean:.5g}{span}")  # fmt: skip
                values.append(Value(mean, spec.color, row))
        for folder, items in self._items.items() if not self.bands.active else ():
            run = ctx.model.runs.get(folder)
            curve = run.curves.get(self.key) if run is not None else None
            if run is None or curve is None:
                continue
            found = value_at(curve, run, ctx.x_mode, data_x, items)
            if found is None:
                continue
            raw, shown = found
            text = f"{shown:.5g}"
            if curve.smoothed:
                text += f" <span style='color:{muted}'>(raw {raw:.5g})</span>"
            colour = items.color.name()
            row = f"<span style='color:{colour}'>&#9632;</span> {html.escape(run.name)}: {text}"
            values.append(Value(shown, colour, row))
        return values

    def readout_html(
        self,
        ctx: DrawContext,
        x: float,
        *,
        limit: int | None = None,
        near: float | None = None,
        values: list[Value] | None = None,
    ) -> str:
        """The readout at view x ``x`` as HTML: the values highest first, at most ``limit``
        lines of them (those nearest ``near``, a data value); "" if there is none."""
        values = self.values_at(ctx, x) if values is None else values
        if not values:
            return ""
        rows = fit_rows(values, limit, near)
        muted = self.colours.muted
        lines = [value.html for value in rows.shown]
        if rows.above:
            lines.insert(0, f"<span style='color:{muted}'>&#8230; {rows.above} more above</span>")
        if rows.below:
            lines.append(f"<span style='color:{muted}'>&#8230; {rows.below} more below</span>")
        head = f"<b>{format_x(10.0**x if ctx.log_x else x, ctx.x_mode)}</b>"
        style = f"color:{self.colours.text}; font-size:{READOUT_PT}pt"
        return f"<div style='{style}'>{head}<br>{'<br>'.join(lines)}</div>"

    def show_values(self, ctx: DrawContext, x: float | None) -> None:
        """The crosshair at view x ``x`` (None hides it) with a dot on each curve at its value;
        the readout lists them all on the hovered chart (as many as its height holds), on the
        others only while they are few (:data:`~desktop_app.charts.readout.SMALL_READOUT`)."""
        if x is None or not math.isfinite(x):
            self.show_crosshair(None)
            return
        values = self.values_at(ctx, x)
        log_y = self._log[1]
        dots = [v for v in values if math.isfinite(v.value) and (v.value > 0 or not log_y)]
        self.value_dots.setData(
            x=[x] * len(dots),
            y=[math.log10(v.value) if log_y else v.value for v in dots],
            brush=[pg.mkBrush(v.colour) for v in dots],
        )
        self.value_dots.setVisible(bool(dots))
        if self._hovered_here:
            near = self.vb.mapToView(self._mouse).y()
            limit = self._readout_lines()
            html_text = self.readout_html(
                ctx, x, limit=limit, near=10.0**near if log_y else near, values=values
            )
        elif len(values) <= SMALL_READOUT:
            html_text = self.readout_html(ctx, x, values=values)
        else:
            html_text = ""
        self.show_crosshair(x, html_text)

    def _readout_lines(self) -> int:
        """How many value lines the readout has room for in the plot's height (its step line
        aside)."""
        font = QFont(self.readout.textItem.font())
        font.setPointSizeF(READOUT_PT)
        line = QFontMetricsF(font).lineSpacing()
        return max(int((self.vb.boundingRect().height() - 8) // max(line, 1.0)) - 1, 1)

    def _on_mouse_moved(self, pos: Any) -> None:
        if self.vb.sceneBoundingRect().contains(pos):
            self._mouse = self.vb.mapFromScene(pos)
            self._hovered_here = True
            self.hovered.emit(self, self.vb.mapSceneToView(pos).x())
        else:
            self._hovered_here = False
            self.hovered.emit(self, None)

    def leaveEvent(self, event: Any) -> None:
        super().leaveEvent(event)
        self.hovered.emit(self, None)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        super().mouseDoubleClickEvent(event)
        self.followRequested.emit()


def value_at(
    curve: Curve, run: RunData, mode: str, x: float, items: _RunItems
) -> tuple[float, float] | None:
    """(raw, displayed) value of ``curve``'s last point at or before ``x`` (data units): from
    the points in memory, or, before them (a long run's history), from what is drawn."""
    n = len(curve.buffer)
    if n:
        curve.sync()
        base, offset = curve.x_base(mode, run.origin)
        target = x + offset
        if curve.x_sorted(mode):
            i = search(base, target, "right") - 1
        else:  # wall times that go back somewhere (steps never do)
            walls = curve.buffer.wall_offsets.astype(np.float64)
            before = np.flatnonzero(walls <= target)
            i = int(before[np.argmax(walls[before])]) if len(before) else -1
        if i >= 0:
            return float(curve.buffer.values[i]), float(curve.y(True)[i])
    drawn = []
    for name in ("raw", "smooth") if curve.smoothed else ("raw",):
        found = None
        if name in items.xs and name in items.ys:
            found = value_at_or_before(items.xs[name], items.ys[name], x)
        drawn.append(None if found is None else found[1])
    if drawn[0] is None:
        return None
    return drawn[0], drawn[-1] if drawn[-1] is not None else drawn[0]
