"""Runs grouped by a config key, drawn in one chart: per group a mean line and a min-max band.

The items are persistent like the runs' (made once per group, updated with ``setData`` from
the display timer); the numbers come from :mod:`desktop_app.charts.aggregate` over the runs'
points in memory (their smoothed values where the chart is smoothed), aligned on step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from desktop_app.charts.aggregate import Aggregate, GroupSpec, aggregate, reduce_columns
from desktop_app.charts.model import ChartsModel
from desktop_app.charts.rules import value_at_or_before

BAND_ALPHA = 60  # of 255


@dataclass
class _GroupItems:
    mean: pg.PlotDataItem
    low: pg.PlotDataItem
    high: pg.PlotDataItem
    band: pg.FillBetweenItem
    color: str
    drawn: Any = None
    full: tuple[Any, Aggregate] | None = None  # (inputs, aggregate over all steps)
    shown: Aggregate | None = None


@dataclass
class GroupBands:
    """The group items of one chart (``plot_item``) for its key ``key``."""

    plot_item: pg.PlotItem
    key: str
    specs: list[GroupSpec] = field(default_factory=list)
    _items: dict[str, _GroupItems] = field(default_factory=dict)

    def sync(self, specs: list[GroupSpec]) -> None:
        """Keep items for ``specs``' groups (none: no grouping)."""
        self.specs = list(specs)
        wanted = {spec.label: spec for spec in specs}
        stale = [k for k, v in self._items.items() if k not in wanted or v.color != wanted[k].color]
        for label in stale:
            items = self._items.pop(label)
            for each in (items.band, items.mean, items.low, items.high):
                self.plot_item.removeItem(each)
        for label, spec in wanted.items():
            if label not in self._items:
                self._items[label] = self._new_items(spec.color)

    def _new_items(self, color: str) -> _GroupItems:
        low = pg.PlotDataItem(pen=None)
        high = pg.PlotDataItem(pen=None)
        fill = QColor(color)
        fill.setAlpha(BAND_ALPHA)
        band = pg.FillBetweenItem(low, high, brush=pg.mkBrush(fill), pen=None)
        mean = pg.PlotDataItem(pen=pg.mkPen(color, width=2))
        for z, each in enumerate((band, low, high, mean)):
            each.setZValue(3 + z)
            self.plot_item.addItem(each)
        return _GroupItems(mean, low, high, band, color)

    @property
    def active(self) -> bool:
        return bool(self.specs)

    def redraw(
        self,
        model: ChartsModel,
        x_range: tuple[float, float],
        width: int,
        *,
        log_x: bool,
    ) -> int:
        """Update the groups' items for the view ``x_range`` (view coordinates) at ``width``
        pixels; returns the ``setData`` calls made."""
        data_range = (10.0 ** x_range[0], 10.0 ** x_range[1]) if log_x else x_range
        smoothing = model.smoothing_of(self.key)
        calls = 0
        for spec in self.specs:
            items = self._items[spec.label]
            inputs = []
            for folder in spec.runs:
                run = model.runs.get(folder)
                curve = run.curves.get(self.key) if run is not None else None
                inputs.append(None if curve is None else (folder, curve.version))
            full_key = (tuple(inputs), smoothing)
            if items.full is None or items.full[0] != full_key:
                items.full = (full_key, self._aggregate(model, spec))
            drawn = (full_key, data_range, width, log_x)
            if items.drawn == drawn:
                continue
            items.drawn = drawn
            shown = reduce_columns(items.full[1], data_range, width)
            items.shown = shown
            items.mean.setData(shown.steps, shown.mean)
            items.low.setData(shown.steps, shown.low)
            items.high.setData(shown.steps, shown.high)
            calls += 3
        return calls

    def _aggregate(self, model: ChartsModel, spec: GroupSpec) -> Aggregate:
        series = []
        for folder in spec.runs:
            run = model.runs.get(folder)
            curve = run.curves.get(self.key) if run is not None else None
            if curve is None or not len(curve):
                continue
            curve.sync()
            series.append((curve.buffer.steps, np.asarray(curve.y(True), dtype=np.float64)))
        return aggregate(series)

    def arrays(self) -> list[np.ndarray]:
        """The values drawn (means and band edges), for fitting the y range."""
        out: list[np.ndarray] = []
        for items in self._items.values():
            if items.shown is not None:
                out.extend((items.shown.mean, items.shown.low, items.shown.high))
        return out

    def values_at(self, step: float) -> list[tuple[GroupSpec, float, float, float]]:
        """Per group, (spec, mean, low, high) at the last step at or before ``step``."""
        out: list[tuple[GroupSpec, float, float, float]] = []
        for spec in self.specs:
            items = self._items.get(spec.label)
            if items is None or items.full is None:
                continue
            agg = items.full[1]
            found = value_at_or_before(agg.steps, agg.mean, step)
            if found is None:
                continue
            i = int(np.searchsorted(agg.steps, found[0]))
            out.append((spec, found[1], float(agg.low[i]), float(agg.high[i])))
        return out

    def items_of(self, label: str) -> tuple[pg.PlotDataItem, pg.FillBetweenItem]:
        """The (mean line, band) items of a group."""
        items = self._items[label]
        return items.mean, items.band

    def set_visible(self, visible: bool) -> None:
        for items in self._items.values():
            for each in (items.band, items.mean, items.low, items.high):
                each.setVisible(visible)
