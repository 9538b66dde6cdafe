"""How config drives results, as numbers to draw: a scatter of one config key against a
result, and parallel coordinates over several keys. Qt-free.

Each listed run is one point (or one line), in its own colour. An axis of numbers is linear,
or logarithmic when its values are all positive and span two decades or more (a learning
rate sweep); a result's axis already from one decade (a sweep's losses often span several,
and a linear axis squashes the best runs, the ones compared, into one blob); anything else
(text, booleans, a mix) is categorical: one position per distinct value, in sorted order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from desktop_app.compare.config_diff import Scalar, value_text

AxisKind = Literal["linear", "log", "categorical"]
#: A numeric axis whose positive values span this ratio or more is logarithmic.
LOG_SPAN = 100.0
#: A result's axis (a loss, an accuracy) whose positive values span this ratio or more is
#: logarithmic.
RESULT_LOG_SPAN = 10.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Axis:
    """One axis: its kind, the categories of a categorical one, and its data range."""

    name: str
    kind: AxisKind
    categories: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0

    def position(self, value: Any) -> float | None:
        """Where ``value`` goes on this axis (log10 of it on a log axis); None: not shown."""
        if self.kind == "categorical":
            if value is None:
                return None
            text = value_text(value)
            return float(self.categories.index(text)) if text in self.categories else None
        number = _number(value)
        if number is None:
            return None
        if self.kind == "log":
            return math.log10(number) if number > 0 else None
        return number

    def fraction(self, value: Any) -> float | None:
        """``value``'s place between the axis ends, 0 to 1 (parallel coordinates)."""
        pos = self.position(value)
        if pos is None:
            return None
        span = self.high - self.low
        return 0.5 if span <= 0 else (pos - self.low) / span

    def label(self, pos: float) -> str:
        """The text of a tick at view position ``pos``."""
        if self.kind == "categorical":
            n = round(pos)
            return self.categories[n] if 0 <= n < len(self.categories) else ""
        return f"{10**pos:.3g}" if self.kind == "log" else f"{pos:.4g}"


def make_axis(
    name: str, values: Sequence[Scalar | float | None], *, log_span: float = LOG_SPAN
) -> Axis:
    """The axis that suits ``values`` (see the module's docstring): logarithmic if they are
    positive numbers whose highest is ``log_span`` times their lowest or more."""
    present = [v for v in values if v is not None]
    numbers = [_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        finite = [n for n in numbers if n is not None]
        low, high = min(finite), max(finite)
        if low > 0 and high / low >= log_span:
            return Axis(name, "log", low=math.log10(low), high=math.log10(high))
        return Axis(name, "linear", low=low, high=high)
    categories = tuple(sorted({value_text(v) for v in present}, key=_category_order))
    return Axis(name, "categorical", categories, 0.0, float(max(len(categories) - 1, 0)))


def result_axis(name: str, values: Sequence[float]) -> Axis:
    """The axis of a result: numeric always, logarithmic from a decade on."""
    axis = make_axis(name, values, log_span=RESULT_LOG_SPAN)
    return axis if axis.kind != "categorical" else Axis(name, "linear")


def _category_order(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


@dataclass(frozen=True)
class Point:
    """One run in the scatter: where, in which colour, and which run (its folder path)."""

    path: str
    name: str
    x: float
    y: float
    colour: str


@dataclass(frozen=True)
class Line:
    """One run in parallel coordinates: its place on each axis (0..1; None where it has no
    value)."""

    path: str
    name: str
    ys: tuple[float | None, ...]
    colour: str


class Source:
    """What the views read of a run: a config value, a result, its colour (callables)."""

    def __init__(
        self,
        config: Callable[[Any, str], Any],
        result: Callable[[Any], float | None],
        colour: Callable[[Any], str],
    ) -> None:
        self.config = config
        self.result = result
        self.colour = colour


def scatter(
    runs: Sequence[Any], x_key: str, y_name: str, source: Source
) -> tuple[list[Point], Axis, Axis]:
    """One point per run that has both a value of ``x_key`` and a result, with the axes."""
    xs = [source.config(run, x_key) for run in runs]
    ys = [source.result(run) for run in runs]
    x_axis = make_axis(x_key, xs)
    y_axis = result_axis(y_name, [y for y in ys if y is not None])
    points = []
    for run, x, y in zip(runs, xs, ys, strict=True):
        px, py = x_axis.position(x), y_axis.position(y)
        if px is not None and py is not None:
            points.append(Point(run.path, run.name, px, py, source.colour(run)))
    return points, x_axis, y_axis


def parallel(
    runs: Sequence[Any], keys: Sequence[str], y_name: str, source: Source
) -> tuple[list[Line], list[Axis]]:
    """One line per run across the config ``keys`` and then the result, with the axes."""
    columns = [[source.config(run, key) for run in runs] for key in keys]
    results = [source.result(run) for run in runs]
    axes = [make_axis(key, values) for key, values in zip(keys, columns, strict=True)]
    axes.append(result_axis(y_name, [r for r in results if r is not None]))
    lines = []
    for n, run in enumerate(runs):
        values = [column[n] for column in columns] + [results[n]]
        ys = tuple(axis.fraction(v) for axis, v in zip(axes, values, strict=True))
        if any(y is not None for y in ys):
            lines.append(Line(run.path, run.name, ys, source.colour(run)))
    return lines, axes
