"""What the charts show, without Qt: the selected runs, their curves, smoothing and event marks.

:class:`ChartsModel` takes :class:`~trainer.journal.reader.TailBatch` es as they arrive and
keeps one :class:`Curve` per (run, key). Each curve holds the raw points, a smoothed copy and
peak indexes for both; :meth:`Curve.points` returns the few thousand points a plot of a given
width needs for a given x range. Everything expensive is done lazily, for the curves drawn.

Memory: a curve stores its points compactly (see :mod:`~desktop_app.charts.series`): about
12 bytes a point, plus, once it has been drawn smoothed, 4 for the smoothed copy and a quarter
of a byte for each of its two peak indexes. The smoothed copy is float32: seven significant
digits, far more than a chart shows, except of a nearly flat stretch far from zero; there, and
wherever a view holds few points, :meth:`Curve.values_at` computes the values drawn afresh in
float64 from the raw values.

Why over 400 lines: :class:`Curve` and :class:`ChartsModel` share the lazily computed smoothing,
peak indexes and event marks of each curve; the storage is in series.py, smoothing and
downsampling in their own modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from desktop_app.charts.downsample import M4Memo, PeakIndex, decimate
from desktop_app.charts.rules import smooth_by_default
from desktop_app.charts.series import SeriesBuffer, Steps, interp, search
from desktop_app.charts.smoothing import (
    KINDS,
    MAX_EMA_WEIGHT,
    EmaSmoother,
    EmaState,
    Smoother,
    ema_buckets,
    make_smoother,
    smooth_buckets,
)
from trainer.journal.envelope import Envelope
from trainer.journal.reader import EventRow, History, TailBatch
from trainer.journal.states import TERMINAL

X_MODES = ("step", "relative", "wall")
GROUPS = ("train", "val", "perf", "system", "other")
#: Events marked on the curves, with the symbol pyqtgraph draws for each.
EVENT_SYMBOLS = {
    "checkpoint": "d",
    "paused": "t1",
    "resumed": "t",
    "restarted": "star",
    "error": "x",
}

#: How a curve stores its smoothed copy (the smoothing itself is computed in float64).
SMOOTHED_DTYPE = np.float32
#: A view of up to this many points draws the smoothed values computed afresh in float64.
EXACT_SPAN = 1 << 10
#: ... and so does a view of up to this many points whose values drawn span fewer than
#: FLAT_STEPS steps of float32 (a 200-pixel chart would then show the rounding).
FLAT_SPAN = 1 << 16
FLAT_STEPS = 4096
_FLOAT32_STEP = 2.0**-23  # relative

#: Room left right of the newest point while following, as a fraction of the data's span.
FOLLOW_MARGIN = 0.05
_ROUND_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)

Smoothing = tuple[str, float]
NO_SMOOTHING: Smoothing = ("none", 0.0)

#: The history's overview: one quick read (not refined at column edges) of its whole range
#: at about as many columns as the chart has pixels, between these bounds, drawn where no
#: exact read covers the view (on open, and while an exact one loads).
OVERVIEW_WIDTH = 1024
MIN_OVERVIEW_WIDTH = 256
#: A view of up to this many points in memory is reduced exactly per pixel column (M4 on
#: the points, about 1 ms); larger ones through the peak index.
EXACT_M4 = 1 << 16
#: A view read covers the view plus this fraction of its span on each side (panning).
PREFETCH = 0.25


def group_of(key: str) -> str:
    """The chart group of a metric key: its namespace if known (``train/loss``: train)."""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    return namespace if namespace in GROUPS[:-1] else "other"


def check_smoothing(kind: str, value: float) -> Smoothing:
    """Validate a smoothing setting; returns it normalised."""
    if kind not in KINDS:
        raise ValueError(f"unknown smoothing {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "ema" and not 0.0 <= value <= MAX_EMA_WEIGHT:
        raise ValueError(f"EMA weight must be in [0, {MAX_EMA_WEIGHT}], got {value}")
    if kind in ("ma", "cma"):
        if value < 1 or value != int(value):
            raise ValueError(f"moving average window must be a whole number >= 1, got {value}")
        if value == 1:
            return NO_SMOOTHING
    if kind == "ema" and value == 0.0:
        return NO_SMOOTHING
    return (kind, 0.0 if kind == "none" else float(value))


@dataclass(frozen=True)
class Mark:
    """An event drawn on a curve: where, which kind, and its tooltip."""

    x: float
    y: float
    kind: str
    text: str


@dataclass(frozen=True)
class EnvelopeRequest:
    """A viewport read a curve wants: ``axis`` is "step" or "wall" (unix s)."""

    axis: str
    x0: float
    x1: float
    width: int
    overview: bool


#: The EMA over an overview's buckets: (where it ends, x, value, accumulator, count).
_OverviewEma = tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class HistoryView:
    """What a long curve shows of its history (the points before its buffer): an overview of
    all of it, and a finer read of the part in view."""

    def __init__(self, info: History) -> None:
        self.info = info
        self.overview: dict[str, Envelope] = {}
        self.view: dict[str, Envelope] = {}
        self.pending: set[tuple[str, bool]] = set()
        #: (axis, smoothing) -> the smoothed history (x, y), until the next read arrives
        self.smoothed: dict[tuple[str, Smoothing], tuple[np.ndarray, np.ndarray]] = {}
        #: (axis, smoothing) -> the EMA over the overview's buckets: (where it ends, x, value,
        #: accumulator, count) after each bucket, until the next overview arrives
        self.overview_ema: dict[tuple[str, Smoothing], _OverviewEma] = {}

    def x_first(self, mode: str, origin: float) -> float:
        if mode == "step":
            return float(self.info.first_step)
        return self.info.first_wall - (origin if mode == "relative" else 0.0)

    def invalidate(self) -> None:
        """A resume superseded steps: read everything again."""
        self.overview.clear()
        self.view.clear()
        self.smoothed.clear()
        self.overview_ema.clear()


def _aligned(envelope: Envelope, x0: float, per_px: float) -> bool:
    """True when ``envelope``'s pixel columns are those of a view from ``x0`` at ``per_px``."""
    have = (envelope.x1 - envelope.x0) / envelope.width
    if not math.isclose(have, per_px, rel_tol=1e-9):
        return False
    shift = (x0 - envelope.x0) / per_px
    return abs(shift - round(shift)) < 1e-6


def _at(x: np.ndarray, value: float, side: Literal["left", "right"]) -> int:
    return int(np.searchsorted(x, value, side))


def _axis(mode: str) -> str:
    return "step" if mode == "step" else "wall"


class Curve:
    """One key of one run: raw points, their smoothed copy and peak indexes of both.

    A long key (over :data:`trainer.journal.reader.HISTORY_LIMIT` points when first read)
    keeps only points logged later in the buffer; its :attr:`history` is drawn from viewport
    reads of the journal's summaries, exact per pixel column, and the memory it takes follows
    the screen, not the run's length.
    """

    def __init__(self, smoothing: Smoothing = NO_SMOOTHING) -> None:
        self.buffer = SeriesBuffer()
        self.history: HistoryView | None = None
        self.version = 0  # bumped by every change of what the curve draws
        self._smoothing = smoothing
        self._smoother: Smoother = make_smoother(*smoothing, dtype=SMOOTHED_DTYPE)
        self._raw_index = PeakIndex()
        self._smooth_index = PeakIndex()
        self._raw_memo = M4Memo()
        self._smooth_memo = M4Memo()
        self._pending: int | None = None  # lowest raw index not yet smoothed / indexed
        self._smooth_pending: int | None = None

    def __len__(self) -> int:
        return len(self.buffer)

    def total(self) -> int:
        """Points of the key, the history's included."""
        return len(self.buffer) + (self.history.info.count if self.history else 0)

    def set_envelope(self, request: EnvelopeRequest, envelope: Envelope) -> None:
        """Take in a viewport read (on the GUI thread); the curve draws it from now on."""
        if self.history is None:
            return
        self.history.pending.discard((request.axis, request.overview))
        target = self.history.overview if request.overview else self.history.view
        target[request.axis] = envelope
        self.history.smoothed.clear()
        if request.overview:
            self.history.overview_ema.clear()
            self._seed_smoother()
        self.version += 1

    def _seed_smoother(self) -> None:
        """An EMA of the points in memory continues from the history's (its state at the
        history's end, from the overview's buckets), so the smoothed line does not restart."""
        history = self.history
        if history is None or not isinstance(self._smoother, EmaSmoother):
            return
        if not history.overview:
            return
        axis = next(iter(history.overview))
        _x, _values, acc, seen = self._overview_ema(axis, self._history_end(axis, 0.0))
        self._smoother.seed(EmaState(float(acc[-1]), int(seen[-1])) if len(acc) else EmaState())
        self._smooth_pending = 0

    def _overview_ema(
        self, axis: str, end: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The EMA over the overview's buckets before ``end`` (x, value, accumulator, count
        after each bucket), computed once per overview: a pan only smooths its view read."""
        assert self.history is not None
        key = (axis, self._smoothing)
        cached = self.history.overview_ema.get(key)
        if cached is None or cached[0] != end:
            overview = self.history.overview[axis]
            keep = overview.mean_x < end
            x = overview.mean_x[keep]
            out, acc, seen = ema_buckets(
                self._smoothing[1], overview.mean_n[keep], overview.mean_sum[keep]
            )
            cached = self.history.overview_ema[key] = (end, x, out, acc, seen)
        return cached[1], cached[2], cached[3], cached[4]

    def wants(
        self, mode: str, origin: float, x_range: tuple[float, float], width: int
    ) -> EnvelopeRequest | None:
        """The viewport read this curve needs to draw its history in ``x_range`` (view
        coordinates) at ``width`` pixels, or None when what it has is fine enough."""
        history = self.history
        if history is None:
            return None
        axis = _axis(mode)
        shift = origin if mode == "relative" else 0.0
        end = self._history_end(mode, origin) + shift
        first = history.x_first(axis, 0.0)
        if (axis, True) not in history.pending and axis not in history.overview:
            history.pending.add((axis, True))
            # About a column per pixel of the chart: what it draws until the exact read
            # comes, and around it when zoomed in (more columns would only cost drawing).
            columns = min(OVERVIEW_WIDTH, max(width, MIN_OVERVIEW_WIDTH))
            return EnvelopeRequest(axis, first, end, columns, True)
        x0, x1 = x_range[0] + shift, x_range[1] + shift
        lo, hi = max(x0, first), min(x1, end)
        if hi <= lo or (axis, False) in history.pending or x1 <= x0:
            return None
        per_px = (x1 - x0) / max(width, 1)
        have = history.view.get(axis)
        if have is not None and _aligned(have, x0, per_px) and have.x0 <= lo and have.x1 >= hi:
            return None
        # Columns aligned with the view's, so that each pixel column is exact; a margin on
        # each side so that a small pan needs no read.
        margin = math.ceil(PREFETCH * width)
        history.pending.add((axis, False))
        return EnvelopeRequest(
            axis, x0 - margin * per_px, x1 + margin * per_px, width + 2 * margin, False
        )

    def _history_end(self, mode: str, origin: float) -> float:
        """The x (view coordinates) where the history ends: the buffer's first point."""
        assert self.history is not None
        if len(self.buffer):
            base, offset = self.x_base(mode, origin)
            return float(base[0]) - offset
        if mode == "step":
            return float(self.history.info.tail_start)
        shift = origin if mode == "relative" else 0.0
        return self.history.info.last_wall + 0.001 - shift  # wall times are whole ms

    def _history_smoothed(
        self, mode: str, origin: float, x_range: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed history in ``x_range``: the smoothing run over the reads' buckets
        (the view read's where it covers, the overview's elsewhere), each bucket taken as
        its points at their mean (see :func:`smooth_buckets`)."""
        history = self.history
        if history is None:
            return np.empty(0), np.empty(0)
        axis = _axis(mode)
        shift = origin if mode == "relative" else 0.0
        key = (axis, self._smoothing)
        cached = history.smoothed.get(key)
        end = self._history_end(mode, origin) + shift
        if cached is None:
            cached = self._ema_over_reads(axis, end)
            if cached is not None:
                history.smoothed[key] = cached
        if cached is None:
            view, overview = history.view.get(axis), history.overview.get(axis)
            covered = (view.x0, view.x1) if view is not None else (math.inf, -math.inf)
            xs, ns, sums = [], [], []
            for env, inside in ((overview, False), (view, True)):
                if env is None:
                    continue
                in_view = (env.mean_x >= covered[0]) & (env.mean_x <= covered[1])
                keep = (in_view if inside else ~in_view) & (env.mean_x < end)
                xs.append(env.mean_x[keep])
                ns.append(env.mean_n[keep])
                sums.append(env.mean_sum[keep])
            if not xs:
                return np.empty(0), np.empty(0)
            x = np.concatenate(xs)
            order = np.argsort(x, kind="stable")
            values, _ = smooth_buckets(
                *self._smoothing, np.concatenate(ns)[order], np.concatenate(sums)[order]
            )
            cached = history.smoothed[key] = (x[order], values)
        x, y = cached
        x0, x1 = x_range[0] + shift, x_range[1] + shift
        lo = max(int(np.searchsorted(x, x0, "left")) - 1, 0)
        hi = int(np.searchsorted(x, x1, "right")) + 1
        return x[lo:hi] - shift, y[lo:hi]

    def _ema_over_reads(self, axis: str, end: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The EMA over the reads' buckets as :meth:`_history_smoothed` defines it, from the
        overview's cached EMA: its values before the view read, its state where the view read
        begins, then the view read's buckets (after the view read, the overview's values).
        None where that does not apply (no EMA, no overview, time running backwards)."""
        history = self.history
        kind, weight = self._smoothing
        if history is None or kind != "ema" or weight <= 0.0 or axis not in history.overview:
            return None
        x, values, acc, seen = self._overview_ema(axis, end)
        view = history.view.get(axis)
        if view is None:
            return x, values
        if len(x) > 1 and bool((np.diff(x) < 0).any()):
            return None
        before = int(np.searchsorted(x, view.x0, "left"))
        after = int(np.searchsorted(x, view.x1, "right"))
        state = EmaState(float(acc[before - 1]), int(seen[before - 1])) if before else None
        inside = (view.mean_x >= view.x0) & (view.mean_x <= view.x1) & (view.mean_x < end)
        mid_x = view.mean_x[inside]
        if len(mid_x) > 1 and bool((np.diff(mid_x) < 0).any()):
            return None
        mid, _ = smooth_buckets("ema", weight, view.mean_n[inside], view.mean_sum[inside], state)
        return (
            np.concatenate([x[:before], mid_x, x[after:]]),
            np.concatenate([values[:before], mid, values[after:]]),
        )

    def _history_points(
        self, mode: str, origin: float, x_range: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The history's points to draw in ``x_range``: the view read where it covers the
        range, the overview elsewhere (view coordinates)."""
        history = self.history
        if history is None:
            return np.empty(0), np.empty(0)
        axis = _axis(mode)
        shift = origin if mode == "relative" else 0.0
        end = self._history_end(mode, origin) + shift
        x0, x1 = x_range[0] + shift, min(x_range[1] + shift, end)
        view, overview = history.view.get(axis), history.overview.get(axis)
        # Envelopes are sorted by x: slices, not masks and a sort over the whole overview
        # (this runs for every chart of every run on every frame).
        lo, hi = x0 - (x1 - x0), x1
        if view is not None and not view.x0 <= view.x1:
            view = None
        parts: list[tuple[Envelope, int, int]] = []
        if overview is not None:
            # Left and right of the view read (x < view.x0, x > view.x1), or all of it.
            ox = overview.x
            first, last = _at(ox, lo, "left"), min(_at(ox, hi, "right"), _at(ox, end, "left"))
            if view is None:
                parts.append((overview, first, last))
            else:
                parts.append((overview, first, min(last, _at(ox, view.x0, "left"))))
        if view is not None:
            vx = view.x
            first = _at(vx, max(lo, view.x0), "left")
            last = min(_at(vx, min(hi, view.x1), "right"), _at(vx, end, "left"))
            parts.append((view, first, last))
            if overview is not None:
                ox = overview.x
                parts.append((overview, max(_at(ox, lo, "left"), _at(ox, view.x1, "right")),
                              min(_at(ox, hi, "right"), _at(ox, end, "left"))))  # fmt: skip
        parts = [(env, a, b) for env, a, b in parts if b > a]
        if not parts:
            return np.empty(0), np.empty(0)
        x = np.concatenate([env.x[a:b] for env, a, b in parts])
        y = np.concatenate([env.y[a:b] for env, a, b in parts])
        return x - shift, y

    @property
    def smoothed(self) -> bool:
        """True when a smoothing other than "none" applies."""
        return self._smoothing[0] != "none"

    def set_smoothing(self, smoothing: Smoothing) -> None:
        """Change the smoothing; the smoothed copy is recomputed when next drawn."""
        if smoothing == self._smoothing:
            return
        self._smoothing = smoothing
        self._smoother = make_smoother(*smoothing, dtype=SMOOTHED_DTYPE)
        self._smooth_pending = 0
        self._seed_smoother()
        self.version += 1

    def changed(self) -> None:
        """Record a change of the buffer (call after appending or truncating)."""
        changed = self.buffer.take_changes()
        if changed is not None:
            self._pending = changed if self._pending is None else min(self._pending, changed)
            self.version += 1

    def sync(self) -> None:
        """Bring the smoothed copy and the peak indexes up to date."""
        values = self.buffer.values
        raw_from, self._pending = self._pending, None
        if raw_from is not None:
            self._raw_index.update(values, raw_from)
            self._raw_memo.changed(raw_from)
        smooth_from = _lowest(raw_from, self._smooth_pending)
        self._smooth_pending = None
        if smooth_from is not None and self.smoothed:
            start = self._smoother.update(values, smooth_from)
            self._smooth_index.update(self._smoother.values, start)
            self._smooth_memo.changed(start)

    def nbytes(self) -> dict[str, int]:
        """Bytes allocated: the points, the smoothed copy, the peak indexes."""
        return {
            "points": self.buffer.nbytes(),
            "smoothed": self._smoother.nbytes(),
            "peak indexes": self._raw_index.nbytes() + self._smooth_index.nbytes(),
        }

    def x_base(self, mode: str, origin: float = 0.0) -> tuple[np.ndarray | Steps, float]:
        """The x the curve is stored by (steps, or wall time offsets for the time modes) and
        the offset to subtract from it to get x in ``mode``'s view coordinates."""
        if mode == "step":
            return self.buffer.step_axis, 0.0
        shift = origin if mode == "relative" else 0.0
        return self.buffer.wall_offsets, shift - self.buffer.wall_origin

    def x_sorted(self, mode: str) -> bool:
        """True when :meth:`x_base` never decreases (steps do; wall times nearly always)."""
        return mode == "step" or self.buffer.walls_sorted

    def y(self, smoothed: bool) -> np.ndarray:
        """Raw values, or the smoothed copy (float32; call :meth:`sync` first)."""
        return self._smoother.values if smoothed and self.smoothed else self.buffer.values

    def values_at(self, indices: np.ndarray, smoothed: bool) -> np.ndarray:
        """The values to draw at ``indices`` (sorted), float64 (call :meth:`sync` first).

        Raw values as logged; smoothed ones from the float32 copy, or computed afresh in
        float64 where the copy's rounding could show (see :data:`EXACT_SPAN`).
        """
        y = self.y(smoothed)
        shown = np.asarray(y[indices], dtype=np.float64)
        if y.dtype == np.float64 or not len(indices):
            return shown
        first, last = int(indices[0]), int(indices[-1])
        span = last - first + 1
        if span > EXACT_SPAN and (span > FLAT_SPAN or not self._flat(indices, shown)):
            return shown
        exact = self._smoother.compute(self.buffer.values, first, last + 1)
        return exact[np.asarray(indices) - first]

    def _flat(self, indices: np.ndarray, shown: np.ndarray) -> bool:
        """True when the raw and smoothed values at ``indices`` span so little next to their
        size that float32's rounding of ``shown`` could be seen."""
        both = np.concatenate((self.buffer.values[indices], shown))
        low, high = np.fmin.reduce(both), np.fmax.reduce(both)
        if not (math.isfinite(low) and math.isfinite(high)):
            return False
        return bool(high - low < FLAT_STEPS * _FLOAT32_STEP * max(abs(low), abs(high)))

    def points(
        self,
        mode: str,
        origin: float,
        x_range: tuple[float, float],
        width: int,
        *,
        smoothed: bool,
        log_x: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) to draw for ``x_range`` (view coordinates) at ``width`` pixels.

        ``origin`` is subtracted from wall times in "relative" mode (the run's start).
        """
        self.sync()
        base, offset = self.x_base(mode, origin)
        y = self.y(smoothed)
        own = smoothed and self.smoothed
        index = self._smooth_index if own else self._raw_index
        picked = decimate(
            base,
            y,
            x_range,
            width,
            index=index,
            x_sorted=self.x_sorted(mode),
            log_x=log_x,
            offset=offset,
            exact_up_to=EXACT_M4,
            memo=self._smooth_memo if own else self._raw_memo,
        )
        xs = base[picked].astype(np.float64) - offset
        ys = self.values_at(picked, smoothed)
        if mode != "step" and len(picked) > 1:
            # In time the line breaks between attempts: the run was not running in between.
            breaks = self.buffer.attempt_breaks(picked)
            if len(breaks):
                xs = np.insert(xs, breaks, np.nan)
                ys = np.insert(ys, breaks, np.nan)
        if self.history is not None:
            view = (10.0 ** x_range[0], 10.0 ** x_range[1]) if log_x else x_range
            if smoothed and self.smoothed:
                hx, hy = self._history_smoothed(mode, origin, view)
            else:
                hx, hy = self._history_points(mode, origin, view)
            if len(hx):
                xs, ys = np.concatenate((hx, xs)), np.concatenate((hy, ys))
        return xs, ys

    def bounds(self, mode: str, origin: float) -> tuple[float, float] | None:
        """First and last x of the curve (None when empty)."""
        if not len(self.buffer):
            if self.history is None:
                return None
            first = self.history.x_first(mode, origin)
            return first, self._history_end(mode, origin)
        base, offset = self.x_base(mode, origin)
        if self.x_sorted(mode):
            lo, hi = float(base[0]) - offset, float(base[-1]) - offset
        else:
            lo, hi = float(base.min()) - offset, float(base.max()) - offset
        if self.history is not None:
            lo = min(lo, self.history.x_first(mode, origin))
        return lo, hi

    def nearest(self, mode: str, origin: float, x: float) -> tuple[float, float, float] | None:
        """(x, raw value, displayed value) of the point nearest to ``x`` (None when empty)."""
        n = len(self.buffer)
        if not n:
            return None
        self.sync()
        base, offset = self.x_base(mode, origin)
        target = x + offset
        if self.x_sorted(mode):
            i = search(base, target)
            if i == n or (i > 0 and target - float(base[i - 1]) < float(base[i]) - target):
                i -= 1
        else:  # wall times that go back somewhere (steps never do)
            walls = self.buffer.wall_offsets
            i = int(np.argmin(np.abs(walls.astype(np.float64) - target)))
        return float(base[i]) - offset, float(self.buffer.values[i]), float(self.y(True)[i])


@dataclass
class RunData:
    """One selected run: its curves, visible events and any read error."""

    folder: Path
    name: str
    origin: float = 0.0  # run.created, unix s: "relative" x counts from here
    curves: dict[str, Curve] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    attempt_starts: dict[int, int] = field(default_factory=dict)
    error: str | None = None
    loaded: bool = False  # True once a first batch arrived
    events_version: int = 0
    ended: bool = False  # its journal says it ended (finished, stopped, failed, crashed)

    def visible_events(self) -> list[EventRow]:
        """Marked events, without those of attempts a later attempt superseded."""
        out = []
        for event in self.events:
            if event.kind not in EVENT_SYMBOLS:
                continue
            if event.step is not None and any(
                attempt > event.attempt and event.step >= start
                for attempt, start in self.attempt_starts.items()
            ):
                continue
            out.append(event)
        return out

    def marks(self, key: str, mode: str, *, smoothed: bool) -> list[Mark]:
        """The event marks on ``key``'s curve, placed on the drawn line."""
        curve = self.curves.get(key)
        if curve is None or not len(curve):
            return []
        curve.sync()
        buffer = curve.buffer
        steps, walls, wall0 = buffer.step_axis, buffer.wall_offsets, buffer.wall_origin
        y = curve.y(smoothed)
        marks = []
        for event in self.visible_events():
            step: float | None = event.step
            if step is None and buffer.walls_sorted:
                step = interp(event.wall - wall0, walls, steps)
            if mode == "step":
                if step is None:
                    continue
                x = float(step)
                value = interp(x, steps, y)
            else:
                x = event.wall - (self.origin if mode == "relative" else 0.0)
                sorted_walls = buffer.walls_sorted
                value = interp(event.wall - wall0, walls, y) if sorted_walls else float(y[-1])
            marks.append(Mark(x, value, event.kind, _event_text(self.name, event)))
        return marks


def _event_text(run: str, event: EventRow) -> str:
    where = "" if event.step is None else f" at step {event.step}"
    message = f": {event.message}" if event.message else ""
    return f"{run}: {event.kind}{where}{message}"


class ChartsModel:
    """The selected runs and their curves; fed with tail batches, queried by the plots."""

    def __init__(self) -> None:
        self.runs: dict[Path, RunData] = {}
        self.smoothing: Smoothing = NO_SMOOTHING
        #: Per key, whether its curves are smoothed; keys not here follow
        #: :func:`~desktop_app.charts.rules.smooth_by_default` (no smoothing of schedules).
        self.key_smoothed: dict[str, bool] = {}

    def set_runs(self, runs: list[tuple[Path, str]]) -> tuple[list[Path], list[Path]]:
        """Select ``runs`` (folder, display name) in this order; returns (added, removed).

        Runs that stay selected keep their data.
        """
        wanted = {Path(folder): name for folder, name in runs}
        removed = [folder for folder in self.runs if folder not in wanted]
        added = [folder for folder in wanted if folder not in self.runs]
        old = self.runs
        self.runs = {}
        for folder, name in wanted.items():
            data = old.get(folder) or RunData(folder, name)
            data.name = name
            self.runs[folder] = data
        return added, removed

    def newest_wall(self) -> float | None:
        """The wall time (unix s) of the newest point of any curve, or None."""
        newest = [
            wall
            for run in self.runs.values()
            for curve in run.curves.values()
            if (wall := curve.buffer.newest_wall) is not None
        ]
        return max(newest, default=None)

    def newest_wall_of(self, folder: Path) -> float | None:
        """The wall time (unix s) of the newest point of ``folder``'s curves, or None."""
        run = self.runs.get(Path(folder))
        if run is None:
            return None
        walls = [w for c in run.curves.values() if (w := c.buffer.newest_wall) is not None]
        return max(walls, default=None)

    def set_smoothing(self, kind: str, value: float) -> bool:
        """Change the smoothing of every curve; True if it changed."""
        smoothing = check_smoothing(kind, value)
        if smoothing == self.smoothing:
            return False
        self.smoothing = smoothing
        for run in self.runs.values():
            for key, curve in run.curves.items():
                curve.set_smoothing(self.smoothing_of(key))
        return True

    def smoothing_of(self, key: str) -> Smoothing:
        """The smoothing of ``key``'s curves: the chosen one, or none for a key that is not
        smoothed (by its chart's choice, else by the rule)."""
        on = self.key_smoothed.get(key)
        if on is None:
            on = smooth_by_default(key)
        return self.smoothing if on else NO_SMOOTHING

    def set_key_smoothing(self, key: str, on: bool | None) -> bool:
        """Smooth ``key``'s curves (True), never (False) or as the rule says (None); True if
        that changed what they draw."""
        before = self.smoothing_of(key)
        if on is None:
            self.key_smoothed.pop(key, None)
        else:
            self.key_smoothed[key] = bool(on)
        after = self.smoothing_of(key)
        if after == before:
            return False
        for run in self.runs.values():
            curve = run.curves.get(key)
            if curve is not None:
                curve.set_smoothing(after)
        return True

    def apply(self, folder: Path, batch: TailBatch) -> tuple[set[str], bool]:
        """Apply a tail batch of ``folder``: (keys whose curves changed, events changed)."""
        run = self.runs.get(folder)
        if run is None:
            return set(), False
        run.error = None
        run.origin = batch.run.created
        run.ended = batch.run.status in TERMINAL
        changed: set[str] = set()
        events_changed = not run.loaded and bool(batch.events)
        run.loaded = True
        for event in batch.events:
            if event.kind == "restarted" and event.step is not None:
                run.attempt_starts.setdefault(event.attempt, event.step + 1)
        for attempt, start in batch.new_attempts:
            run.attempt_starts[attempt] = start
            events_changed = True
            for key, old in run.curves.items():
                if old.buffer.truncate_from(start):
                    old.changed()
                    changed.add(key)
                if old.history is not None and start < old.history.info.tail_start:
                    old.history.invalidate()
                    old.version += 1
                    changed.add(key)
        for key, info in batch.history.items():
            curve = run.curves.get(key)
            if curve is None:
                curve = run.curves[key] = Curve(self.smoothing_of(key))
            curve.history = HistoryView(info)
            curve.version += 1
            changed.add(key)
        for key, series in batch.points.items():
            if not len(series):
                continue
            curve = run.curves.get(key)
            if curve is None:
                curve = run.curves[key] = Curve(self.smoothing_of(key))
            curve.buffer.append(series.steps, series.values, series.walls, series.attempts)
            curve.changed()
            changed.add(key)
        if batch.events:
            run.events.extend(batch.events)
            events_changed = True
        if events_changed:
            run.events_version += 1
        return changed, events_changed

    def reset_run(self, folder: Path) -> None:
        """Forget what was read of ``folder`` (before reading it again from the start)."""
        run = self.runs.get(folder)
        if run is not None:
            self.runs[folder] = RunData(folder, run.name, error=run.error)

    def set_error(self, folder: Path, message: str) -> None:
        """Record that ``folder``'s journal cannot be read."""
        run = self.runs.get(folder)
        if run is not None:
            run.error = message

    def n_points(self) -> int:
        """Points held in memory by all curves of the selected runs (histories excluded)."""
        return sum(len(c) for run in self.runs.values() for c in run.curves.values())

    def holds(self, runs: int, keys: int, points: int) -> bool:
        """True when ``runs`` runs are selected and loaded, each with ``keys`` curves of
        ``points`` points or more (benchmarks and probes wait for it)."""
        return len(self.runs) == runs and all(
            run.loaded
            and len(run.curves) == keys
            and all(curve.total() >= points for curve in run.curves.values())
            for run in self.runs.values()
        )

    def nbytes(self) -> dict[str, int]:
        """Bytes allocated by the curves of the selected runs, by kind (see Curve.nbytes)."""
        total: dict[str, int] = {}
        for run in self.runs.values():
            for curve in run.curves.values():
                for kind, size in curve.nbytes().items():
                    total[kind] = total.get(kind, 0) + size
        return total

    def keys(self) -> list[str]:
        """Every key of the selected runs, sorted."""
        return sorted({key for run in self.runs.values() for key in run.curves})

    def any_live(self) -> bool:
        """True if some run read has not ended (its curves may still grow)."""
        return any(run.loaded and not run.ended for run in self.runs.values())

    def x_bounds(self, mode: str, *, log_x: bool = False) -> tuple[float, float] | None:
        """The x range of all curves in ``mode`` (log10 of it with ``log_x``; x > 0 only)."""
        lo, hi = math.inf, -math.inf
        for run in self.runs.values():
            for curve in run.curves.values():
                bounds = curve.bounds(mode, run.origin)
                if bounds is None:
                    continue
                first, last = bounds
                if log_x:
                    if last <= 0:
                        continue
                    first = _first_positive(curve, mode, run.origin) if first <= 0 else first
                lo, hi = min(lo, first), max(hi, last)
        if lo > hi:
            return None
        if log_x:
            return math.log10(lo), math.log10(hi)
        return lo, hi


def follow_range(
    bounds: tuple[float, float],
    current: tuple[float, float] | None,
    margin: float = FOLLOW_MARGIN,
    *,
    live: bool = True,
) -> tuple[float, float]:
    """The x range that follows data spanning ``bounds``, given the ``current`` range.

    The range spans ``margin`` more than the data and stays put until the data reaches its
    right edge. While some run is ``live`` that span is rounded up to a round number (see
    :func:`round_up`): a live run moves the axes (a new tick layout and a repaint of every
    chart) about every fifth of its age, not every few points.
    """
    lo, hi = bounds
    if hi - lo <= 0:
        lo, hi = lo - 0.5, hi + 0.5
    span = (hi - lo) * (1.0 + margin)
    target = (lo, lo + (round_up(span) if live else span))
    if current is not None:
        c_lo, c_hi = current
        if math.isclose(c_lo, lo, rel_tol=1e-12, abs_tol=1e-12) and hi <= c_hi <= target[1]:
            return current
    return target


def round_up(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten that is at
    least ``value`` (so at most a quarter more); ``value`` itself if not positive and finite."""
    if not (value > 0 and math.isfinite(value)):
        return value
    power = 10.0 ** math.floor(math.log10(value))
    for step in _ROUND_STEPS:
        if step * power >= value * (1.0 - 1e-12):
            return step * power
    return 10.0 * power


def _lowest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _first_positive(curve: Curve, mode: str, origin: float) -> float:
    base, offset = curve.x_base(mode, origin)
    if curve.x_sorted(mode):
        i = search(base, offset, "right")
        return float(base[min(i, len(base) - 1)]) - offset
    walls = curve.buffer.wall_offsets  # not sorted: wall times (steps always are)
    positive = walls[walls > offset]
    return float(positive.min()) - offset if len(positive) else float(walls.max()) - offset
