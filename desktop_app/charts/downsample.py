"""Peak-preserving downsampling to a pixel budget, for uneven x. Qt-free.

:func:`m4` keeps, for every pixel column, the first, last, lowest and highest point (the M4
method): drawn as a line at that width, the result looks like the full data, and a single
spike among millions of points stays. It works on any x (uneven, with gaps, even not sorted).

Running it over millions of points on every frame would cost more than drawing them, so a
:class:`PeakIndex` keeps, per block of points at several levels (4, 8, 16, ... points), the
index of the block's lowest and highest value, updated incrementally as points arrive. It
stores the levels from blocks of 16 points up, each extreme as its offset in its block (a
byte up to blocks of 256 points): about a quarter of a byte per point. For a view,
:func:`decimate` picks the coarsest level that still has 1.5 or more blocks per pixel column
and draws those blocks' extremes in order, which looks the same as M4: the work follows the
pixel budget, not the number of points. M4 itself runs only where no level is fine enough (a
few thousand points).
"""

from __future__ import annotations

import numpy as np

from desktop_app.charts.series import GrowingArray, Steps, search

BASE = 4  # points per level-1 block
FANOUT = 2  # blocks of level k per block of level k + 1
OVERSAMPLE = 1.5  # blocks per pixel column (at least) at the level chosen for a view
RAW_BUDGET = 3  # up to this many points per pixel column, draw them all
_INDEX = np.int32  # indices into one series: 2**31 points is far beyond a chart
_FEW = 32  # up to this many entries, a level is updated in plain Python
#: The finest level a PeakIndex stores (blocks of 16 points): a view that needs a finer one
#: shows fewer than 24 points per pixel column, whose extremes are quicker found than kept.
STORED_FROM = 3


def _offset_dtype(block: int) -> type:
    """The smallest unsigned type that holds an offset within a block of ``block`` points."""
    if block <= 1 << 8:
        return np.uint8
    return np.uint16 if block <= 1 << 16 else np.uint32


class PeakIndex:
    """Per-block argmin/argmax of a growing array at levels of 4, 8, 16, ... points.

    :meth:`update` only records what changed; a level is brought up to date when a view
    first needs it (:meth:`candidates`), so the levels coarser than any view are never built.
    The finest levels (below :data:`STORED_FROM`) are never stored: a view that needs one
    holds so few points that its blocks' extremes are found from the points themselves.
    """

    def __init__(self) -> None:
        # _levels[k - STORED_FROM] = (argmin, argmax) of the blocks of level k (BASE *
        # FANOUT**(k-1) points), each the offset of the extreme from its block's first point.
        self._levels: list[tuple[GrowingArray, GrowingArray]] = []
        self._stale: list[int] = []  # per level: the lowest index whose blocks are outdated
        self._size = 0
        self._count = 0  # levels that hold more than one block at this size

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        """Bytes allocated for the levels built so far."""
        return sum(a.nbytes + b.nbytes for a, b in self._levels)

    def block_size(self, level: int) -> int:
        """Points per block at ``level`` (0: the points themselves)."""
        return 1 if level == 0 else BASE * FANOUT ** (level - 1)

    @property
    def levels(self) -> int:
        """Levels above the points themselves that hold more than one block."""
        return self._count

    def update(self, y: np.ndarray, changed_from: int) -> None:
        """Record that ``y[changed_from:]`` is new or changed (``y`` is the whole array)."""
        if len(y) != self._size:
            self._size = len(y)
            self._count = _levels_above(self._size)
        self._stale = [min(stale, changed_from) for stale in self._stale]

    def refresh(self, y: np.ndarray, level: int) -> None:
        """Bring the stored levels up to ``level`` up to date with ``y`` (the array given to
        :meth:`update`)."""
        n = len(y)
        if n != self._size:
            raise ValueError(f"the index holds {self._size} points, not {n}: update it first")
        stored = max(self._count - STORED_FROM + 1, 0)
        del self._levels[stored:]
        del self._stale[stored:]
        for k in range(STORED_FROM, min(level, self._count) + 1):
            j = k - STORED_FROM
            block = self.block_size(k)
            if j == len(self._levels):
                dtype = _offset_dtype(block)
                self._levels.append((GrowingArray(dtype, 64), GrowingArray(dtype, 64)))
                self._stale.append(0)
            if self._stale[j] >= n:
                continue
            argmin, argmax = self._levels[j]
            first = min(self._stale[j] // block, len(argmin))
            if j == 0:
                rows = _rows(y[first * block :], block)
                lo = _pick(rows, highest=False, local=True)
                hi = _pick(rows, highest=True, local=True)
            else:
                below = len(self._levels[j - 1][0])
                lo_idx, hi_idx = self._extremes(k - 1, first * FANOUT, below)
                if len(lo_idx) <= _FEW:  # a few new blocks: plain Python beats numpy's overhead
                    lo = _pick_few(y, lo_idx.tolist(), highest=False)
                    hi = _pick_few(y, hi_idx.tolist(), highest=True)
                else:
                    lo = lo_idx[_pick(_rows(y[lo_idx], FANOUT), highest=False)]
                    hi = hi_idx[_pick(_rows(y[hi_idx], FANOUT), highest=True)]
                starts = np.arange(first, first + len(lo), dtype=np.int64) * block
                lo, hi = lo - starts, hi - starts
            argmin.put(first, lo)
            argmax.put(first, hi)
            self._stale[j] = n

    def _extremes(self, level: int, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """The indices (into the points) of the lowest and highest point of the blocks
        ``first..last - 1`` of a stored ``level``."""
        argmin, argmax = self._levels[level - STORED_FROM]
        starts = np.arange(first, last, dtype=np.int64) * self.block_size(level)
        return argmin.view[first:last] + starts, argmax.view[first:last] + starts

    def candidates(self, y: np.ndarray, lo: int, hi: int, level: int) -> np.ndarray:
        """Sorted indices in ``[lo, hi)``: both ends and every ``level`` block's extremes."""
        if level <= 0 or hi - lo <= 2:
            return np.arange(lo, hi, dtype=_INDEX)
        block = self.block_size(level)
        first, last = lo // block, (hi - 1) // block + 1
        if level < STORED_FROM:
            # The same blocks' extremes as a stored level would hold, from the points.
            start = first * block
            rows = _rows(y[start : min(last * block, len(y))], block)
            lows = _pick(rows, highest=False) + start
            highs = _pick(rows, highest=True) + start
        else:
            self.refresh(y, level)
            lows, highs = self._extremes(level, first, last)
        picks = np.concatenate(([lo, hi - 1], lows, highs)).astype(_INDEX, copy=False)
        return _sorted_unique(picks[(picks >= lo) & (picks < hi)])

    def level_for(self, points: int, width: int) -> int:
        """The coarsest level with at least OVERSAMPLE blocks per pixel column for ``points``."""
        level, levels = 0, self.levels
        while level < levels and points // self.block_size(level + 1) >= OVERSAMPLE * width:
            level += 1
        return level


def _levels_above(size: int) -> int:
    """How many levels hold more than one block for ``size`` points: level k's blocks hold
    BASE * FANOUT**(k - 1) points, so those with blocks smaller than ``size``."""
    count, block = 0, BASE
    while size > block:
        count, block = count + 1, block * FANOUT
    return count


class M4Memo:
    """The last exact M4 of a growing series (its view, range of points and picks), so that
    the next one, after points were only appended, redoes just its last pixel column.

    A live chart redraws on every new point; over a run of thousands of points in view that
    was an M4 of all of them each time. The owner calls :meth:`changed` for every change of
    the series (an appended point, a truncation), which forgets the picks a change reaches.
    """

    def __init__(self) -> None:
        self.view: tuple[float, float, int, float] | None = None  # x0, x1, width, offset
        self.lo = 0
        self.hi = 0
        self.picked = np.empty(0, dtype=_INDEX)
        self.resume = 0  # the first point of the last run: from here on, M4 is redone

    def changed(self, index: int) -> None:
        """Points from ``index`` on changed (or were added)."""
        if index < self.resume:
            self.view = None


def _rows(values: np.ndarray, block: int) -> np.ndarray:
    """``values`` as rows of ``block``, the last row padded with copies of the last value.

    A copy never wins over the original (ties go to the first occurrence), so an argmin or
    argmax of a row always points at a real value.
    """
    m = len(values)
    rows = -(-m // block)
    if rows * block != m:
        padded = np.empty(rows * block, dtype=values.dtype)
        padded[:m] = values
        padded[m:] = values[m - 1] if m else np.nan
        values = padded
    return values.reshape(rows, block)


def _pick(rows: np.ndarray, *, highest: bool, local: bool = False) -> np.ndarray:
    """Per row, the position (in the flattened rows, or in its row with ``local``) of the
    lowest or highest value.

    NaN never wins over a number (it counts as the worst value).
    """
    if not len(rows):
        return np.empty(0, dtype=_INDEX)
    nan = np.isnan(rows)
    if nan.any():
        rows = np.where(nan, -np.inf if highest else np.inf, rows)
    chosen = rows.argmax(axis=1) if highest else rows.argmin(axis=1)
    if local:
        return chosen
    return chosen + np.arange(0, rows.size, rows.shape[1], dtype=_INDEX)


def _pick_few(y: np.ndarray, index: list[int], *, highest: bool) -> np.ndarray:
    """:func:`_pick` over ``y[index]`` in groups of FANOUT, for a handful of indices."""
    values = y[index].tolist()
    out = []
    for start in range(0, len(index), FANOUT):
        best, best_value = index[start], values[start]
        for j in range(start + 1, min(start + FANOUT, len(index))):
            value = values[j]
            if value != value:  # NaN never wins
                continue
            if best_value != best_value or (value > best_value if highest else value < best_value):
                best, best_value = index[j], value
        out.append(best)
    return np.array(out, dtype=_INDEX)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    if len(values) < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def m4(xs: np.ndarray, ys: np.ndarray, x0: float, x1: float, width: int) -> np.ndarray:
    """Indices into ``xs``/``ys`` of the first, last, lowest and highest point per pixel column.

    Columns are ``width`` equal slices of ``[x0, x1]``; points left or right of it fall in one
    column each side. Consecutive points in one column form a run; a run keeps at most four
    points, in their original order.
    """
    return _m4(xs, ys, x0, x1, width)[0]


def _m4(
    xs: np.ndarray, ys: np.ndarray, x0: float, x1: float, width: int, few: int = 4
) -> tuple[np.ndarray, int]:
    """:func:`m4`, and where its last run starts (the points an appended point may join).

    Up to ``few`` points are all kept as they are (0: always worked out by runs, as a part
    of a longer series must be).
    """
    n = len(xs)
    if n == 0 or n <= few or width <= 0 or not x1 > x0:
        return np.arange(n, dtype=_INDEX), 0  # runs not worked out: redo them all
    with np.errstate(invalid="ignore"):
        cols = np.floor((xs - x0) * (width / (x1 - x0)))
    cols = np.nan_to_num(cols, nan=-2.0, posinf=width, neginf=-1.0)
    cols = np.clip(cols, -1, width).astype(_INDEX)
    starts = np.flatnonzero(np.concatenate(([True], cols[1:] != cols[:-1])))
    ends = np.append(starts[1:], n)
    picks = [starts, ends - 1]
    for reduce in (np.fmin, np.fmax):
        best = reduce.reduceat(ys, starts)
        hits = np.flatnonzero(ys == np.repeat(best, ends - starts))
        pos = np.searchsorted(hits, starts)
        found = pos < len(hits)
        at = hits[np.minimum(pos, max(len(hits) - 1, 0))] if len(hits) else starts
        picks.append(np.where(found & (at < ends), at, starts))
    return _sorted_unique(np.concatenate(picks)), int(starts[-1])


def decimate(
    x: np.ndarray | Steps,
    y: np.ndarray,
    x_range: tuple[float, float],
    width: int,
    *,
    index: PeakIndex | None = None,
    x_sorted: bool = True,
    log_x: bool = False,
    offset: float = 0.0,
    exact_up_to: int = 0,
    memo: M4Memo | None = None,
) -> np.ndarray:
    """Indices of the points of ``(x, y)`` to draw for ``x_range`` at ``width`` pixels.

    Up to ``exact_up_to`` points in range are reduced by M4 itself, so each pixel column
    shows exactly its points' lowest and highest value; beyond, the peak index's blocks
    (every spike kept, a column's extreme possibly drawn in its neighbour).

    The view shows ``x - offset`` (its log10 with ``log_x``, where x <= offset is left out);
    ``x_range`` is in the view's coordinates. With ``x_sorted`` only the points in the range
    (and one beyond each side) are considered. ``index`` (kept up to date with ``y``) makes
    the cost follow ``width`` instead of the number of points. ``memo`` (told of every change
    of the series) lets an M4 of the same view redo only the points from its last run on.
    """
    n = len(x)
    x0, x1 = x_range
    lo_x, hi_x = (10.0**x0, 10.0**x1) if log_x else (x0, x1)
    if x_sorted:
        lo = max(search(x, lo_x + offset, "left") - 1, 0)
        hi = min(search(x, hi_x + offset, "right") + 1, n)
        if log_x:
            lo = max(lo, search(x, offset, "right"))
    else:
        lo, hi = 0, n
    if hi <= lo:
        return np.empty(0, dtype=_INDEX)
    level = index.level_for(hi - lo, width) if index is not None and len(index) == n else 0
    if hi - lo <= RAW_BUDGET * max(width, 1):
        picked = np.arange(lo, hi, dtype=_INDEX)
    elif index is not None and level > 0 and hi - lo > exact_up_to:
        # Every block's lowest and highest point, in order, at >= OVERSAMPLE blocks per
        # pixel column: drawn, it is the same picture as M4 and costs far less.
        picked = index.candidates(y, lo, hi, level)
    elif memo is not None and x_sorted and not log_x:
        picked = _m4_memo(memo, x, y, lo, hi, (x0, x1, width, offset))
    else:
        xs = np.asarray(x[lo:hi], dtype=np.float64) - offset
        if log_x:
            with np.errstate(divide="ignore", invalid="ignore"):
                xs = np.log10(xs)
        picked = m4(xs, y[lo:hi], x0, x1, width).astype(_INDEX) + lo
    if log_x and not x_sorted:
        picked = picked[x[picked] > offset]
    return picked


def _m4_memo(
    memo: M4Memo,
    x: np.ndarray | Steps,
    y: np.ndarray,
    lo: int,
    hi: int,
    view: tuple[float, float, int, float],
) -> np.ndarray:
    """M4 of sorted points ``lo..hi - 1``, redoing from ``memo``'s last run when the view and
    ``lo`` are the same and points were only added: runs end where the column changes, so
    the runs before the last one pick the same points either way."""
    x0, x1, width, offset = view
    start = lo
    if memo.view == view and memo.lo == lo and memo.hi <= hi:  # lo <= resume <= memo.hi
        start = memo.resume
    xs = np.asarray(x[start:hi], dtype=np.float64) - offset
    picks, last = _m4(xs, y[start:hi], x0, x1, width, few=0 if start > lo else 4)
    picked = picks.astype(_INDEX) + start
    if start > lo:
        kept = memo.picked[: np.searchsorted(memo.picked, start)]
        picked = np.concatenate((kept, picked))
    memo.view, memo.lo, memo.hi, memo.picked = view, lo, hi, picked
    memo.resume = start + last
    return picked
