"""The x axis of a chart: steps, time since the run started, or wall-clock time.

One axis item per plot switches between the three, so changing the x mode never rebuilds a
plot: steps use pyqtgraph's plain ticks (log ticks in log mode), wall time its date ticks and
relative time ticks at round durations (30 s, 5 min, 2 h, ...) written as ``1h30m``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import datetime
from typing import Any, ClassVar

import pyqtgraph as pg

#: Tick spacings of the relative-time axis, in seconds.
DURATION_STEPS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 432000, 864000,
)  # fmt: skip
_TICK_PIXELS = 90  # wanted pixels between major ticks of the relative-time axis
_LABEL_GAP_X, _LABEL_GAP_Y = 48, 18  # least pixels between two labels of log ticks


def format_duration(seconds: float) -> str:
    """``5430`` -> ``"1h30m30s"``; under a second: ``"0.25s"``; negative with a minus."""
    if not math.isfinite(seconds):
        return ""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds:.3g}s" if seconds else "0"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + "".join(parts)


def format_x(value: float, mode: str) -> str:
    """An x value as the crosshair label shows it in ``mode``."""
    if mode == "step":
        return f"step {value:,.0f}"
    if mode == "relative":
        return format_duration(value)
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def split_log_ticks(
    ticks: list[tuple[Any, list[float]]], span: float, size: float, min_gap: float
) -> list[tuple[Any, list[float]]]:
    """Make log ticks within about one decade readable.

    There pyqtgraph has a single level of ticks (x2 ... x9 of the decade), all labelled, which
    overlap near the decade's end. Keep labels ``min_gap`` pixels apart (x1, x2, x5 first) and
    move the other ticks to a level that is drawn without labels.
    """
    if len(ticks) != 1 or ticks[0][0] is not None or span <= 0 or size <= 0:
        return ticks
    values = sorted(ticks[0][1])
    pixels = size / span

    def rank(v: float) -> tuple[bool, float]:
        return (round(10 ** (v - math.floor(v))) not in (1, 2, 5), v)

    labelled: list[float] = []
    for v in sorted(values, key=rank):
        if all(abs(v - u) * pixels >= min_gap for u in labelled):
            labelled.append(v)
    if len(labelled) == len(values):
        return ticks
    others = [v for v in values if v not in labelled]
    return [(None, sorted(labelled)), (None, []), (None, []), (None, others)]


class YAxis(pg.AxisItem):
    """The left axis: pyqtgraph's, with readable log ticks within one decade."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(orientation="left", **kwargs)

    def natural_width(self) -> int:
        """The width the axis would take for its widest tick label drawn so far (the panel
        gives every chart the widest one's, so that their plot areas line up)."""
        offset = self.style["tickTextOffset"][0] if self.style["showValues"] else 0
        return math.ceil(self.textWidth + offset + max(0, self.style["tickLength"]))

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> Any:
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        return split_log_ticks(ticks, maxVal - minVal, size, _LABEL_GAP_Y)


class XAxis(pg.DateAxisItem):
    """A bottom axis whose ticks follow :attr:`mode` ("step", "relative" or "wall").

    The charts share one x range and one width, so their x axes lay out the same ticks and
    labels: the layout (pyqtgraph's draw specs, about 1.3 ms an axis) is made once per range
    and shape and reused by every axis that has them (a pan re-lays out all of them).
    """

    #: (what the layout depends on) -> draw specs and the labels' height; the newest few.
    _layouts: ClassVar[OrderedDict[tuple[Any, ...], tuple[Any, float]]] = OrderedDict()
    _LAYOUTS_KEPT: ClassVar[int] = 8

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(orientation="bottom", **kwargs)
        self.mode = "step"

    def generateDrawSpecs(self, p: Any) -> Any:
        view = self.linkedView()
        if self._tickLevels is not None or view is None:
            return super().generateDrawSpecs(p)
        bounds = self.mapRectFromParent(self.geometry())
        ticks = view.mapRectToItem(self, view.boundingRect()) if self.grid is not False else None
        font = self.style["tickFont"]
        key = (
            self.mode, self.logMode, tuple(self.range), bounds.getRect(),
            ticks.getRect() if ticks is not None else None, self.grid, self.scale,
            self.autoSIPrefixScale, font.key() if font is not None else p.font().key(),
            self.pen().color().rgba(), self.tickPen().color().rgba(),
            tuple(sorted((k, repr(v)) for k, v in self.style.items() if k != "tickFont")),
        )  # fmt: skip
        found = XAxis._layouts.get(key)
        if found is None:
            specs = super().generateDrawSpecs(p)
            if specs is None:
                return None
            texts = specs[2]
            found = (specs, max((rect.height() for rect, _f, _t in texts), default=0.0))
            XAxis._layouts[key] = found
            while len(XAxis._layouts) > XAxis._LAYOUTS_KEPT:
                XAxis._layouts.popitem(last=False)
        else:
            XAxis._layouts.move_to_end(key)
            self._updateMaxTextSize(found[1])
        return found[0]

    def set_mode(self, mode: str) -> None:
        """Switch the tick style; redraws the axis."""
        if mode != self.mode:
            self.mode = mode
            self.picture = None
            self.update()

    def linkToView(self, view: pg.ViewBox) -> None:
        # DateAxisItem limits the view to its date range; steps and durations need no limits.
        self._linkToView_internal(view)

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> Any:
        if self.mode != "relative" or self.logMode:
            return pg.AxisItem.tickSpacing(self, minVal, maxVal, size)
        span = maxVal - minVal
        wanted = span * _TICK_PIXELS / max(size, 1.0)
        if span <= 0 or wanted < 1:
            return pg.AxisItem.tickSpacing(self, minVal, maxVal, size)
        steps = [s for s in DURATION_STEPS if s >= wanted]
        major = steps[0] if steps else 864000 * math.ceil(wanted / 864000)
        divisors = [s for s in DURATION_STEPS if s < major and major % s == 0 and s >= major / 6]
        minor = divisors[0] if divisors else major
        return [(major, 0.0), (minor, 0.0)]

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> Any:
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        return split_log_ticks(ticks, maxVal - minVal, size, _LABEL_GAP_X)

    def tickValues(self, minVal: float, maxVal: float, size: float) -> Any:
        if self.mode == "wall" and not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        return pg.AxisItem.tickValues(self, minVal, maxVal, size)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.mode == "wall" and not self.logMode:
            return list(super().tickStrings(values, scale, spacing))
        if self.mode == "relative" and not self.logMode and spacing >= 1:
            return [format_duration(v) for v in values]
        return list(pg.AxisItem.tickStrings(self, values, scale, spacing))
