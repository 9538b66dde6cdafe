"""Smoothing of a metric, always computed from the raw values, vectorised and incremental. Qt-free.

* :func:`ema`: TensorBoard's debiased exponential moving average. Non-finite values pass
  through unchanged and are left out of the average.
* :func:`moving_average`: the mean of the finite values in a trailing or centred window.

A :class:`Smoother` keeps its output in a growing array and recomputes only what a change of
the raw values can affect: the new points (EMA, trailing average) plus the last ``window // 2``
(centred average). A change in the middle (a resumed attempt) recomputes the EMA from the
start, which is rare.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from desktop_app.charts.series import GrowingArray

#: Smoothing kinds accepted by :func:`make_smoother` (and ``ChartsPanel.set_smoothing``).
KINDS = ("none", "ema", "ma", "cma")
MAX_EMA_WEIGHT = 0.999
_CHUNK = 1 << 16  # points per cumulative sum of the moving average: bounds rounding errors
#: An EMA keeps its state every this many points (see EmaSmoother.compute).
CHECKPOINT = 1024


@dataclass(frozen=True)
class EmaState:
    """Where an EMA stopped: the biased accumulator and how many finite values it has seen."""

    accumulator: float = 0.0
    count: int = 0


def ema(
    values: np.ndarray, weight: float, state: EmaState | None = None
) -> tuple[np.ndarray, EmaState]:
    """Debiased EMA of ``values`` continuing from ``state``; returns the output and new state.

    ``acc_t = weight * acc_{t-1} + (1 - weight) * x_t`` (``acc_0 = 0``), shown as
    ``acc_t / (1 - weight ** t)`` with ``t`` counting finite values, so the first point is
    the first value and a constant series stays constant.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"EMA weight must be in [0, 1), got {weight}")
    state = state or EmaState()
    x = np.asarray(values, dtype=np.float64)
    out = x.copy()
    finite = np.isfinite(x)
    all_finite = bool(finite.all())
    xf = x if all_finite else x[finite]
    if len(xf) == 0:
        return out, state
    acc = xf.copy() if weight == 0.0 else _ema_accumulate(xf, weight, state.accumulator)
    counts = state.count + np.arange(1, len(xf) + 1, dtype=np.float64)
    debiased = acc / -np.expm1(counts * math.log(weight)) if weight > 0.0 else acc
    if all_finite:
        out = debiased
    else:
        out[finite] = debiased
    return out, EmaState(float(acc[-1]), state.count + len(xf))


@functools.lru_cache(maxsize=16)
def _powers(a: float) -> tuple[int, np.ndarray, np.ndarray]:
    """The block length for weight ``a``, ``a**j`` for j in 0..block and ``a**-j`` below block
    (kept: an update of a few points would otherwise spend most of its time on them)."""
    block = int(min(4096, max(1, 150 // -math.log10(a))))
    powers = a ** np.arange(block + 1, dtype=np.float64)
    inverse = 1.0 / powers[:-1]
    powers.flags.writeable = inverse.flags.writeable = False
    return block, powers, inverse


def _ema_accumulate(x: np.ndarray, a: float, carry: float) -> np.ndarray:
    """acc_j = a * acc_{j-1} + (1 - a) * x_j, in blocks short enough for a**-j to stay finite."""
    block, powers, inverse = _powers(a)
    out = np.empty_like(x)
    for start in range(0, len(x), block):
        chunk = x[start : start + block]
        m = len(chunk)
        sums = np.cumsum(chunk * inverse[:m])  # sum of a**-i * x_i
        out[start : start + m] = powers[1 : m + 1] * carry + (1.0 - a) * powers[:m] * sums
        carry = float(out[start + m - 1])
    return out


def moving_average(values: np.ndarray, window: int, *, centred: bool = False) -> np.ndarray:
    """Mean of the finite values in a trailing (or centred) window of ``window`` points.

    Near the ends the window holds fewer points; a window with no finite value gives NaN.
    """
    left, right = _window_sides(window, centred)
    x = np.asarray(values, dtype=np.float64)
    return _window_means(x, 0, len(x), left, right)


def _window_sides(window: int, centred: bool) -> tuple[int, int]:
    if window < 1:
        raise ValueError(f"moving average window must be >= 1, got {window}")
    left = window // 2 if centred else window - 1
    return left, window - 1 - left


def _window_means(x: np.ndarray, start: int, stop: int, left: int, right: int) -> np.ndarray:
    """Window means for output indices ``start..stop-1`` over all of ``x``."""
    n = len(x)
    out = np.empty(max(stop - start, 0), dtype=np.float64)
    for chunk in range(start, stop, _CHUNK):
        end = min(chunk + _CHUNK, stop)
        lo = max(chunk - left, 0)
        hi = min(end + right, n)
        seg = x[lo:hi]
        finite = np.isfinite(seg)
        sums = np.concatenate(([0.0], np.cumsum(np.where(finite, seg, 0.0))))
        counts = np.concatenate(([0], np.cumsum(finite)))
        idx = np.arange(chunk, end)
        a = np.maximum(idx - left, 0) - lo
        b = np.minimum(idx + right + 1, n) - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            out[chunk - start : end - start] = (sums[b] - sums[a]) / (counts[b] - counts[a])
    return out


class Smoother:
    """Keeps a smoothed copy of a growing series; base class: no smoothing (a copy).

    The copy may be stored in a narrower ``dtype`` (a chart keeps float32: half the memory,
    and seven significant digits, more than a drawing of the whole curve can show). The
    smoothing itself is always computed in float64, and :meth:`compute` gives any range of it
    afresh in float64, for views zoomed in far enough to show the difference.
    """

    #: How many outputs before a changed input can change too (a centred window looks ahead).
    lookahead = 0

    def __init__(self, dtype: type | np.dtype = np.float64) -> None:
        self._out = GrowingArray(dtype)

    @property
    def values(self) -> np.ndarray:
        """The smoothed values (a view, valid until the next update)."""
        return self._out.view

    def nbytes(self) -> int:
        """Bytes allocated for the output."""
        return self._out.nbytes

    def update(self, raw: np.ndarray, changed_from: int) -> int:
        """Bring the output up to date after ``raw[changed_from:]`` changed (or was added).

        Returns the lowest output index that changed.
        """
        start = max(min(changed_from, len(self._out)) - self.lookahead, 0)
        start = self._restart(start)
        self._out.resize(start)
        self._out.append(self._compute(raw, start))
        return start

    def compute(self, raw: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Outputs ``start..stop - 1`` in float64, computed from ``raw`` (the array of the last
        :meth:`update`) in about O(stop - start) time, whatever the stored dtype."""
        return np.asarray(raw[start:stop], dtype=np.float64)

    def _restart(self, start: int) -> int:
        """Where the computation can resume, at or before ``start``."""
        return start

    def _compute(self, raw: np.ndarray, start: int) -> np.ndarray:
        return np.asarray(raw[start:], dtype=np.float64)


class EmaSmoother(Smoother):
    """Debiased EMA; appending costs O(new points), any other change restarts it.

    The EMA's state is kept every :data:`CHECKPOINT` points, so that :meth:`compute` starts
    from the nearest one before the range instead of from the first point.
    """

    def __init__(self, weight: float, dtype: type | np.dtype = np.float64) -> None:
        super().__init__(dtype)
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"EMA weight must be in [0, 1), got {weight}")
        self.weight = weight
        self._initial = EmaState()  # the state before the first point (see seed())
        self._state = EmaState()
        # The state before point j * CHECKPOINT, for j = 1, 2, ... (before point 0: nothing).
        self._accumulators = GrowingArray(np.float64, 16)
        self._counts = GrowingArray(np.int64, 16)

    def compute(self, raw: np.ndarray, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty(0, dtype=np.float64)
        j = min(start // CHECKPOINT, len(self._counts))
        state = self._initial
        if j:
            state = EmaState(float(self._accumulators.view[j - 1]), int(self._counts.view[j - 1]))
        first = j * CHECKPOINT
        out, _ = ema(raw[first:stop], self.weight, state)
        return out[start - first :]

    def _restart(self, start: int) -> int:
        if start < len(self._out):
            self._state = self._initial
            self._accumulators.resize(0)
            self._counts.resize(0)
            return 0
        return start

    def seed(self, state: EmaState) -> None:
        """Continue from ``state`` (the EMA of the points before this series: a long run's
        history); the output is recomputed at its next update from 0."""
        self._initial = state
        self._state = state
        self._accumulators.resize(0)
        self._counts.resize(0)
        self._out.resize(0)

    def _compute(self, raw: np.ndarray, start: int) -> np.ndarray:
        pieces = []
        state = self._state
        n = len(raw)
        while start < n:  # in pieces that end at checkpoints, to record the state there
            stop = min((start // CHECKPOINT + 1) * CHECKPOINT, n)
            out, state = ema(raw[start:stop], self.weight, state)
            pieces.append(out)
            if stop % CHECKPOINT == 0:
                j = stop // CHECKPOINT
                self._accumulators.put(j - 1, np.array([state.accumulator]))
                self._counts.put(j - 1, np.array([state.count]))
            start = stop
        self._state = state
        return np.concatenate(pieces) if pieces else np.empty(0, dtype=np.float64)


class MovingAverageSmoother(Smoother):
    """Trailing or centred moving average of ``window`` points."""

    def __init__(
        self, window: int, *, centred: bool = False, dtype: type | np.dtype = np.float64
    ) -> None:
        super().__init__(dtype)
        self.window = window
        self.centred = centred
        self._left, self._right = _window_sides(window, centred)
        self.lookahead = self._right

    def compute(self, raw: np.ndarray, start: int, stop: int) -> np.ndarray:
        x = np.asarray(raw, dtype=np.float64)
        return _window_means(x, start, max(stop, start), self._left, self._right)

    def _compute(self, raw: np.ndarray, start: int) -> np.ndarray:
        x = np.asarray(raw, dtype=np.float64)
        return _window_means(x, start, len(x), self._left, self._right)


def linear_scan(keep: np.ndarray, adds: np.ndarray, start: float = 0.0) -> np.ndarray:
    """The recurrence ``acc[i] = keep[i] * acc[i - 1] + adds[i]`` from ``acc[-1] = start``,
    for every ``i``: a parallel prefix scan, log2(n) whole-array passes.

    Steps compose as (k1, a1) then (k2, a2) = (k1 * k2, k2 * a1 + a2); a pass combines each
    step with the one ``shift`` before it. The sums are those of the loop, grouped otherwise,
    so they differ from it by rounding only; and no Python runs per step, so a reading
    thread keeps the GIL for a few microseconds, not a loop's millisecond.
    """
    acc = np.array(adds, dtype=np.float64)
    k = np.array(keep, dtype=np.float64)
    if not len(acc):
        return acc
    acc[0] += k[0] * start
    k[0] = 0.0  # the start is in acc[0] now: nothing before it carries through
    shift = 1
    while shift < len(acc):
        acc[shift:] = acc[shift:] + k[shift:] * acc[:-shift]
        k[shift:] = k[shift:] * k[:-shift]
        shift *= 2
    return acc


def ema_buckets(
    weight: float, counts: np.ndarray, sums: np.ndarray, state: EmaState | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The EMA of a series known by buckets (see :func:`smooth_buckets`), continuing from
    ``state``: the value after each bucket, and the state after each (its biased accumulator
    and finite count), from which a later run can continue at any bucket."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    acc0, seen0 = (state.accumulator, state.count) if state is not None else (0.0, 0)
    log_w = math.log(weight)
    keep = np.exp(counts * log_w)  # the weight the state keeps over each bucket
    # What each bucket adds, its count of points at their mean; an empty one adds nothing.
    with np.errstate(divide="ignore", invalid="ignore"):
        adds = np.where(counts > 0, (1.0 - keep) * (sums / counts), 0.0)
    acc = linear_scan(keep, adds, acc0)
    seen = seen0 + np.cumsum(counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(seen > 0, acc / -np.expm1(seen * log_w), np.nan)
    return out, acc, seen


def smooth_buckets(
    kind: str,
    value: float,
    counts: np.ndarray,
    sums: np.ndarray,
    state: EmaState | None = None,
) -> tuple[np.ndarray, EmaState | None]:
    """The smoothing of a series known only by buckets (``counts`` finite points summing to
    ``sums``, in order), each bucket taken as its count of points at its mean: the value after
    each bucket, and for "ema" the state after the last (``state``: where an earlier run of
    it stopped). Where the values in each bucket are equal this is the point-wise smoothing;
    otherwise it differs by at most a bucket's range.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    means = np.divide(sums, counts, out=np.full(len(sums), np.nan), where=counts > 0)
    if kind == "ema" and value > 0.0:
        out, acc, seen = ema_buckets(value, counts, sums, state)
        if not len(acc):
            return out, state if state is not None else EmaState()
        return out, EmaState(float(acc[-1]), int(seen[-1]))
    if kind in ("ma", "cma") and value > 1:
        total_n, total_s = np.cumsum(counts), np.cumsum(sums)
        left, right = _window_sides(int(value), kind == "cma")
        last = total_n - 1  # index of each bucket's last point
        end = np.minimum(np.searchsorted(total_n, last + right + 1, "left"), len(counts) - 1)
        first = np.searchsorted(total_n, np.maximum(last - left, 0) + 1, "left")
        before_n = np.where(first > 0, total_n[np.maximum(first - 1, 0)], 0.0)
        before_s = np.where(first > 0, total_s[np.maximum(first - 1, 0)], 0.0)
        n_in, s_in = total_n[end] - before_n, total_s[end] - before_s
        return np.divide(s_in, n_in, out=means.copy(), where=n_in > 0), None
    return means, None


def make_smoother(kind: str, value: float = 0.0, dtype: type | np.dtype = np.float64) -> Smoother:
    """A smoother for ``kind``: "none", "ema" (weight ``value``), "ma" (trailing window
    ``value``) or "cma" (centred window ``value``), storing its output as ``dtype``."""
    if kind == "none":
        return Smoother(dtype)
    if kind == "ema":
        return EmaSmoother(float(value), dtype)
    if kind in ("ma", "cma"):
        return MovingAverageSmoother(int(value), centred=kind == "cma", dtype=dtype)
    raise ValueError(f"unknown smoothing {kind!r}; expected one of {', '.join(KINDS)}")
