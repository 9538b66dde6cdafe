"""The x axis of a chart: steps, time since the run started, or wall-clock time.

One axis item per plot switches between the three, so changing the x mode never rebuilds a
plot: steps use pyqtgraph's plain ticks (log ticks in log mode), wall time its date ticks and
relative time ticks at round durations (30 s, 5 min, 2 h, ...) written as ``1h30m``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter, QPicture

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


_STEP_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))


def format_steps(values: list[float], spacing: float) -> list[str] | None:
    """Step ticks of 10,000 and over as ``"3.18M"``, ``"250k"``: as many decimals as the tick
    spacing needs, the same for every label (whole numbers where that would take over three).
    None for smaller steps and for ticks closer than one step: pyqtgraph's labels."""
    top = max((abs(v) for v in values), default=0.0)
    if top < 10_000 or spacing < 1:
        return None
    unit, suffix = next((u, s) for u, s in _STEP_UNITS if top >= u)
    step = spacing / unit
    places = next((p for p in range(4) if abs(round(step, p) - step) <= 1e-9 * step), None)
    if places is None:  # ticks a few steps apart: the whole number is shorter
        return [f"{v:.0f}" for v in values]
    return [f"{v / unit:.{places}f}{suffix}" for v in values]


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


class _CachedBounds(pg.AxisItem):
    """pyqtgraph's axis bounding rect, kept until the axis or its view box moves.

    With a grid the rect spans the view box, mapped through both items on every ask, and
    Qt asks several times per paint of every chart."""

    _bounds_key: tuple[Any, ...] | None = None
    _bounds: QRectF

    def boundingRect(self) -> QRectF:
        view = self.linkedView()
        key = (
            self.geometry().getRect(), view.geometry().getRect() if view is not None else None,
            self.grid, self.style["hideOverlappingLabels"], self.style["tickLength"],
        )  # fmt: skip
        if key != self._bounds_key:
            self._bounds = super().boundingRect()
            self._bounds_key = key
        return QRectF(self._bounds)


class YAxis(_CachedBounds):
    """The left axis: pyqtgraph's, with readable log ticks within one decade."""

    #: Bumped whenever a left axis's natural width may have changed: the panel lines the
    #: axes up then, not on every display tick.
    widths_version: ClassVar[int] = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(orientation="left", **kwargs)

    def _updateMaxTextSize(self, x: int) -> None:
        before = self.textWidth
        super()._updateMaxTextSize(x)
        if self.textWidth != before:
            YAxis.widths_version += 1

    def setStyle(self, **kwargs: Any) -> None:
        super().setStyle(**kwargs)
        YAxis.widths_version += 1

    def natural_width(self) -> int:
        """The width the axis would take for its widest tick label drawn so far (the panel
        gives every chart the widest one's, so that their plot areas line up)."""
        offset = self.style["tickTextOffset"][0] if self.style["showValues"] else 0
        return math.ceil(self.textWidth + offset + max(0, self.style["tickLength"]))

    def logTickValues(self, minVal: float, maxVal: float, size: float, stdTicks: Any) -> Any:
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        return split_log_ticks(ticks, maxVal - minVal, size, _LABEL_GAP_Y)


@dataclass(frozen=True)
class _Layout:
    """An x axis drawn once: its picture and its labels' height."""

    picture: QPicture
    text_height: float


class XAxis(_CachedBounds, pg.DateAxisItem):
    """A bottom axis whose ticks follow :attr:`mode` ("step", "relative" or "wall").

    The charts share one x range and one width, so their x axes draw the same ticks, labels
    and grid: the drawing (pyqtgraph's draw specs, then its picture, about 2 ms an axis) is
    made once per range and shape and played by every axis that has them (a pan redraws
    all of them).
    """

    #: (what the drawing depends on) -> the drawing; the newest few.
    _layouts: ClassVar[OrderedDict[tuple[Any, ...], _Layout]] = OrderedDict()
    _LAYOUTS_KEPT: ClassVar[int] = 8
    picture: QPicture | None  # pyqtgraph's: this axis's drawing, None until painted

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(orientation="bottom", **kwargs)
        self.mode = "step"

    def paint(self, p: QPainter, opt: Any, widget: Any) -> None:
        if self.picture is None:
            self.picture = self._shared_picture()
        super().paint(p, opt, widget)

    def _shared_picture(self) -> QPicture | None:
        """The drawing of this axis, from the shared ones if another axis made it (None:
        pyqtgraph draws it as usual)."""
        view = self.linkedView()
        if self._tickLevels is not None or view is None:
            return None
        picture = QPicture()
        painter = QPainter(picture)
        try:
            if self.style["tickFont"]:
                painter.setFont(self.style["tickFont"])
            bounds = self.mapRectFromParent(self.geometry())
            grid = view.mapRectToItem(self, view.boundingRect()) if self.grid is not False else None
            key = (
                self.mode, self.logMode, tuple(self.range), bounds.getRect(),
                grid.getRect() if grid is not None else None, self.grid, self.scale,
                self.autoSIPrefixScale, painter.font().key(), self.pen().color().rgba(),
                self.tickPen().color().rgba(), self.textPen().color().rgba(), self._style_key(),
            )  # fmt: skip
            found = XAxis._layouts.get(key)
            if found is not None:
                XAxis._layouts.move_to_end(key)
                self._updateMaxTextSize(found.text_height)
                return found.picture
            specs = super().generateDrawSpecs(painter)
            if specs is None:
                return None
            self.drawPicture(painter, *specs)
        finally:
            painter.end()
        height = max((rect.height() for rect, _f, _t in specs[2]), default=0.0)
        XAxis._layouts[key] = _Layout(picture, height)
        while len(XAxis._layouts) > XAxis._LAYOUTS_KEPT:
            XAxis._layouts.popitem(last=False)
        return picture

    def _style_key(self) -> tuple[Any, ...]:
        frozen: tuple[Any, ...] | None = self.__dict__.get("_style_frozen")
        if frozen is None:
            frozen = tuple(sorted((k, repr(v)) for k, v in self.style.items() if k != "tickFont"))
            self.__dict__["_style_frozen"] = frozen
        return frozen

    def setStyle(self, **kwargs: Any) -> None:
        self.__dict__.pop("_style_frozen", None)  # pyqtgraph changes the style only here
        super().setStyle(**kwargs)

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
        if self.mode == "step" and not self.logMode:
            steps = format_steps(values, spacing * scale)
            if steps is not None:
                return steps
        return list(pg.AxisItem.tickStrings(self, values, scale, spacing))
