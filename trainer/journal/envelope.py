"""Reading a key by viewport: the points a chart of a given width needs, exact per pixel column.

:func:`read_envelope` answers (key, x range, pixel width, x axis) with at most four points per
pixel column: each column's first, last, lowest and highest point (M4). The lowest and highest
are exact: equal to the minimum and maximum of every raw point in that column. They come from
the coarsest summary level that has at least two buckets per column; a bucket that straddles
a column edge is replaced by its children (down to the raw points) only where its extremes
could change a column's, so a read costs a few rows per column, whatever the run's length.

Non-finite values (inf, -inf, NaN) are never drawn as values; :attr:`Envelope.nonfinite`
counts them per column, exactly, so a divergence shows however far out the view is.

Journals whose summaries are not built yet (schema v1, or a migration under way) are read
from their points: the same answer, at a cost that grows with the points in range.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field, replace

import numpy as np

from trainer.journal import summaries as sm

X_AXES = ("step", "relative", "wall")
#: A view with at most this many points per pixel column reads the raw points.
RAW_PER_COLUMN = 8
#: The level chosen has at least this many buckets per pixel column.
BUCKETS_PER_COLUMN = 2
#: A quick overview (``exact=False``) makes do with a bucket per two columns: every spike is
#: there, an eighth of the rows to read (the exact read that follows draws each column).
OVERVIEW_BUCKETS = 0.5
_IN_CHUNK = 900  # bucket ids per IN (...) list


@dataclass(frozen=True)
class Envelope:
    """What a chart draws of one key for one viewport."""

    x: np.ndarray  # float64, ascending
    y: np.ndarray  # float64, finite
    steps: np.ndarray  # int64: the step of each point
    nonfinite: np.ndarray  # int64 per pixel column: non-finite values there
    level: int  # the summary level the view was drawn from (0: the raw points)
    x0: float
    x1: float
    width: int
    #: The rows the view was read from, for smoothing: the x of each one's last point, its
    #: finite points and their sum (each row taken as that many points at its mean).
    mean_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean_n: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    mean_sum: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __len__(self) -> int:
        return len(self.x)


def empty(x0: float, x1: float, width: int, level: int = 0) -> Envelope:
    return Envelope(
        np.empty(0), np.empty(0), np.empty(0, np.int64), np.zeros(width, np.int64),
        level, x0, x1, width,
    )  # fmt: skip


class _Axis:
    """Maps a row's points to x and x to pixel columns."""

    def __init__(self, axis: str, created: float, x0: float, x1: float, width: int) -> None:
        if axis not in X_AXES:
            raise ValueError(f"unknown x axis {axis!r}: expected one of {', '.join(X_AXES)}")
        self.axis = axis
        self.shift = created if axis == "wall" else 0.0
        self.x0, self.x1, self.width = x0, x1, width
        self.scale = width / (x1 - x0) if x1 > x0 else 0.0

    def x(self, rows: np.ndarray, which: str) -> np.ndarray:
        if self.axis == "step":
            return rows[f"{which}_step"].astype(np.float64)
        return self.shift + rows[f"{which}_wall"] / 1000.0

    def column(self, x: np.ndarray) -> np.ndarray:
        """The pixel column of each x: -1 left of the view, ``width`` right of it."""
        col = np.floor((x - self.x0) * self.scale).astype(np.int64)
        col[x == self.x1] = self.width - 1
        col[x < self.x0] = -1
        col[x > self.x1] = self.width
        return np.clip(col, -1, self.width)


def read_envelope(
    conn: sqlite3.Connection,
    key_id: int,
    x0: float,
    x1: float,
    width: int,
    *,
    axis: str = "step",
    created: float = 0.0,
    summarized: bool = True,
    exact: bool = True,
) -> Envelope:
    """The M4 points of ``key_id`` in ``[x0, x1]`` for ``width`` pixel columns (one short read:
    call inside a read transaction). ``summarized``: the journal's summaries are complete.
    ``exact=False`` reads a coarser level (:data:`OVERVIEW_BUCKETS`) and skips refining the
    buckets that straddle column edges: every spike is still drawn, but a column may show
    its neighbour's extreme (a quick first look)."""
    width = max(int(width), 1)
    ax = _Axis(axis, created, x0, x1, width)
    if not summarized:
        rows = _raw_rows_in_view(conn, key_id, ax)
        return _with_means(ax, _reduce(ax, rows, 0), rows)
    level, rows = _descend(conn, key_id, ax, BUCKETS_PER_COLUMN if exact else OVERVIEW_BUCKETS)
    if level == 0:
        return _with_means(ax, _reduce(ax, rows, 0), rows)
    chosen, read = level, rows
    if not exact:
        return _with_means(ax, _reduce(ax, rows, chosen), read)
    cutoffs = sm.attempt_cutoffs(conn)
    resolved: list[np.ndarray] = []
    while len(rows):
        first, last = ax.column(ax.x(rows, "first")), ax.column(ax.x(rows, "last"))
        inside = (first == last) & (first >= 0) & (first < width)
        resolved.append(rows[inside])
        straddle = rows[(first != last) & (last >= 0) & (first < width)]
        if not len(straddle):
            break
        known = np.concatenate([*resolved, straddle])
        lo, hi = _column_extremes(ax, known)
        need = _needs_refining(ax, straddle, lo, hi)
        resolved.append(straddle[~need])
        rows = _children(conn, key_id, level, straddle[need], cutoffs, walls=ax.axis != "step")
        level -= 1
    got = _reduce(ax, np.concatenate(resolved) if resolved else np.zeros(0, sm.ROW), chosen)
    return _with_means(ax, got, read)


def _with_means(ax: _Axis, envelope: Envelope, rows: np.ndarray) -> Envelope:
    if not len(rows):
        return envelope
    x = ax.x(rows, "last")
    return replace(envelope, mean_x=x, mean_n=rows["n"] - rows["nonfinite"], mean_sum=rows["sum"])


def _descend(
    conn: sqlite3.Connection, key_id: int, ax: _Axis, per_column: float
) -> tuple[int, np.ndarray]:
    """From the top level down, the rows that overlap the view, stopping at the first level
    with ``per_column`` buckets per column (or at the raw points, where they are few)."""
    b_lo, b_hi = -(2**62), 2**62
    for level in range(sm.LEVELS, 0, -1):
        rows = sm.fetch_rows(conn, key_id, level, b_lo, b_hi, walls=ax.axis != "step")
        rows = rows[(ax.x(rows, "last") >= ax.x0) & (ax.x(rows, "first") <= ax.x1)]
        if not len(rows):
            return level, rows
        if int(rows["n"].sum()) <= RAW_PER_COLUMN * ax.width:
            pts = sm.visible_points(
                conn, key_id, int(rows["first_step"][0]), int(rows["last_step"][-1])
            )
            return 0, sm.point_rows(pts)
        if len(rows) >= per_column * ax.width or level == 1:
            return level, rows
        b_lo = int(rows["bucket"][0]) * sm.FANOUT
        b_hi = (int(rows["bucket"][-1]) + 1) * sm.FANOUT - 1
    return 0, np.zeros(0, sm.ROW)


def _column_extremes(ax: _Axis, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the lowest and highest value among the rows' own points in it."""
    lo = np.full(ax.width, math.inf)
    hi = np.full(ax.width, -math.inf)
    for which in ("first", "last", "min", "max"):
        col = ax.column(ax.x(rows, which))
        ok = (col >= 0) & (col < ax.width)
        vals = rows["min"] if which == "min" else rows["max"] if which == "max" else None
        if vals is None:
            vals = rows[f"{which}_value"]
            vals = np.where(np.isfinite(vals), vals, np.nan)
        finite = ok & np.isfinite(vals)
        np.minimum.at(lo, col[finite], vals[finite])
        np.maximum.at(hi, col[finite], vals[finite])
    return lo, hi


def _needs_refining(ax: _Axis, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each straddling row: could its points in some column change that column's lowest
    or highest value, or hold a non-finite value whose column is unknown?"""
    first = np.clip(ax.column(ax.x(rows, "first")), 0, ax.width - 1)
    last = np.clip(ax.column(ax.x(rows, "last")), 0, ax.width - 1)
    # Time that went backwards within a row (a clock change) makes its span unknown.
    need = (rows["nonfinite"] > 0) | (last < first)
    for i in np.flatnonzero(~need).tolist():
        a, b = int(first[i]), int(last[i]) + 1
        need[i] = bool((rows["min"][i] < lo[a:b]).any() or (rows["max"][i] > hi[a:b]).any())
    return need


def _children(
    conn: sqlite3.Connection,
    key_id: int,
    level: int,
    rows: np.ndarray,
    cutoffs: list[tuple[int, float]],
    *,
    walls: bool = True,
) -> np.ndarray:
    """The rows one level below ``rows`` (the raw points below level 1), in order (their
    wall times 0 without ``walls``)."""
    if not len(rows):
        return np.zeros(0, sm.ROW)
    if level == 1:
        return sm.point_rows(_points_in_buckets(conn, key_id, rows["bucket"].tolist(), cutoffs))
    ids = (rows["bucket"][:, None] * sm.FANOUT + np.arange(sm.FANOUT)).ravel().tolist()
    parts = []
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        where = f"bucket IN ({', '.join('?' * len(chunk))})"
        parts.append(sm.select_rows(conn, where, (key_id, level - 1, *chunk), walls=walls))
    return np.concatenate(parts)


_RANGES = 400  # step ranges per statement (two parameters each)


def _points_in_buckets(
    conn: sqlite3.Connection, key_id: int, buckets: list[int], cutoffs: list[tuple[int, float]]
) -> np.ndarray:
    """The visible points of level-1 ``buckets`` (sorted), a few statements in all: each
    joins a list of step ranges to the clustered index."""
    parts = []
    for attempt, cutoff in cutoffs:
        for start in range(0, len(buckets), _RANGES):
            chunk = buckets[start : start + _RANGES]
            ranges = ", ".join(["(?, ?)"] * len(chunk))
            params: list[float] = []
            for b in chunk:
                params += [b * sm.BASE, min((b + 1) * sm.BASE, cutoff) - 1]
            pts = np.fromiter(
                conn.execute(
                    f"WITH r(lo, hi) AS (VALUES {ranges}) "
                    "SELECT s.step, s.value, COALESCE(s.wall_ms, w.wall_ms, 0) FROM r "
                    "JOIN scalar AS s ON s.key_id = ? AND s.attempt = ? "
                    "AND s.step BETWEEN r.lo AND r.hi "
                    "LEFT JOIN step_wall AS w ON w.attempt = s.attempt AND w.step = s.step",
                    (*params, key_id, attempt),
                ),
                dtype=sm.POINT,
            )
            if len(pts):
                parts.append(pts)
    if not parts:
        return np.zeros(0, dtype=sm.POINT)
    pts = np.concatenate(parts)
    return pts[np.argsort(pts["step"], kind="stable")]


def _raw_rows_in_view(conn: sqlite3.Connection, key_id: int, ax: _Axis) -> np.ndarray:
    """Without summaries: the visible points in the view (by step, or all of them by time)."""
    if ax.axis == "step":
        lo, hi = math.ceil(ax.x0), math.floor(ax.x1)
        pts = sm.visible_points(conn, key_id, lo, hi) if lo <= hi else None
    else:
        pts = sm.visible_points(conn, key_id, -(2**62), 2**62)
    return np.zeros(0, sm.ROW) if pts is None else sm.point_rows(pts)


def _reduce(ax: _Axis, rows: np.ndarray, level: int) -> Envelope:
    """Each column's first, last, lowest and highest finite point among ``rows``' points,
    and its non-finite count (rows wholly inside one column)."""
    width = ax.width
    nonfinite = np.zeros(width, np.int64)
    if not len(rows):
        return empty(ax.x0, ax.x1, width, level)
    col_first = ax.column(ax.x(rows, "first"))
    inside = (col_first >= 0) & (col_first < width)
    np.add.at(nonfinite, col_first[inside], rows["nonfinite"][inside])
    xs, ys, steps = [], [], []
    for which in ("first", "last", "min", "max"):
        xs.append(ax.x(rows, which))
        steps.append(rows[f"{which}_step"])
        ys.append(rows[which] if which in ("min", "max") else rows[f"{which}_value"])
    x, y, step = np.concatenate(xs), np.concatenate(ys), np.concatenate(steps)
    col = ax.column(x)
    keep = (col >= 0) & (col < width) & np.isfinite(y)
    x, y, step, col = x[keep], y[keep], step[keep], col[keep]
    if not len(x):
        return Envelope(x, y, step, nonfinite, level, ax.x0, ax.x1, width)
    order = np.lexsort((step, x))
    x, y, step, col = x[order], y[order], step[order], col[order]
    # A point can be two things of one row (its first and its lowest): keep it once.
    once = np.r_[True, (step[1:] != step[:-1]) | (x[1:] != x[:-1])]
    x, y, step, col = x[once], y[once], step[once], col[once]
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], len(col)]
    counts = ends - starts
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    lo_hits = np.flatnonzero(y == np.repeat(lo, counts))
    hi_hits = np.flatnonzero(y == np.repeat(hi, counts))
    chosen = np.unique(
        np.concatenate(
            [
                starts,
                ends - 1,
                lo_hits[np.searchsorted(lo_hits, starts)],
                hi_hits[np.searchsorted(hi_hits, starts)],
            ]
        )
    )
    return Envelope(x[chosen], y[chosen], step[chosen], nonfinite, level, ax.x0, ax.x1, width)
