"""What the crosshair's readout lists, Qt-free: each run's (or group's) value at the hovered
step, highest first, so that the list reads in the order of the curves; when more runs than fit
in the chart's height, those whose values are nearest the mouse's, with a line saying how many
more are above and below.

On the hovered chart the readout lists them; the other charts mark each value with a dot on its
curve and show a readout only while it is :data:`SMALL_READOUT` rows or fewer: a dozen runs'
readouts on every chart covered every curve at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The other charts show a readout of this many values or fewer (more: only the dots).
SMALL_READOUT = 3


@dataclass(frozen=True)
class Value:
    """One run's (or group's) value at the crosshair: ``value`` as drawn, ``colour`` of its
    curve, ``html`` its readout row."""

    value: float
    colour: str
    html: str


@dataclass(frozen=True)
class Rows:
    """The values a readout lists, and how many it leaves out above and below them."""

    shown: tuple[Value, ...]
    above: int = 0
    below: int = 0


def ordered(values: Sequence[Value]) -> list[Value]:
    """Highest value first (as the curves lie on the chart); NaN last."""
    return sorted(
        values, key=lambda v: (math.isnan(v.value), -v.value if v.value == v.value else 0)
    )


def fit_rows(values: Sequence[Value], limit: int | None, near: float | None = None) -> Rows:
    """``values`` highest first; at most ``limit`` lines in all (a line each for the left-out
    ones above and below counts), centred on the value nearest ``near`` (the mouse's)."""
    rows = ordered(values)
    if limit is None or len(rows) <= limit:
        return Rows(tuple(rows))
    room = max(limit - 2, 1)
    centre = 0
    if near is not None and math.isfinite(near):
        distances = [abs(v.value - near) if math.isfinite(v.value) else math.inf for v in rows]
        centre = distances.index(min(distances))
    start = min(max(centre - room // 2, 0), len(rows) - room)
    return Rows(tuple(rows[start : start + room]), start, len(rows) - start - room)
