"""One metric of one run as compact, growing numpy arrays. Qt-free.

:class:`GrowingArray` grows geometrically (doubling while small, by an eighth once large, and
to the exact size for one big batch), so appending is amortised O(new points) and readers get
views without copying. :class:`SeriesBuffer` keeps a key's steps, values and wall times in step
order and remembers the lowest index changed since its consumer last looked
(:meth:`SeriesBuffer.take_changes`), so smoothing and downsampling redo only the tail.

A chart holds millions of points, so the buffer stores each in as few bytes as keep what the
chart shows: values as logged (float64), wall times as float32 seconds from the series' first
wall time, steps as (first, stride) while they go up evenly (:class:`Steps`; else as int32
while they fit, int64 or float64 only when needed), and the attempts run-length encoded:
12 bytes a point (16 while the steps go up unevenly) instead of 28.

Why over 400 lines: the compact encodings (steps as first and stride, float32 wall times, run-
length attempts) and the growing arrays are one storage format, tested together.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: From this capacity on, an array grows by an eighth instead of doubling.
_LARGE = 1 << 16
#: A batch this big that more than doubles an array makes it exactly as big as needed.
_EXACT_FROM = 1 << 12
_STEP_DTYPES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.float64))
#: Steps held as (first, stride) stay below this in size, where float64 holds every integer.
_EXACT_STEPS = 2.0**53


def _grown(capacity: int, size: int) -> int:
    """The capacity that holds ``size`` items, grown from ``capacity``."""
    if size >= _EXACT_FROM and size > 2 * capacity:
        return size
    while capacity < size:
        capacity = capacity * 2 if capacity < _LARGE else capacity + capacity // 8
    return capacity


class GrowingArray:
    """A 1-D numpy array that grows geometrically; :attr:`view` is valid until the next change."""

    def __init__(self, dtype: type | np.dtype = np.float64, capacity: int = 1024) -> None:
        self._data: np.ndarray = np.empty(max(capacity, 1), dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """How many items fit before the next reallocation."""
        return len(self._data)

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def nbytes(self) -> int:
        """Bytes allocated (the capacity, not just the items)."""
        return int(self._data.nbytes)

    @property
    def view(self) -> np.ndarray:
        """The items, without copying."""
        return self._data[: self._size]

    def astype(self, dtype: type | np.dtype) -> None:
        """Store the items as ``dtype`` from now on (a wider type: nothing is lost)."""
        self._data = self._data.astype(dtype)

    def resize(self, size: int) -> None:
        """Keep the first ``size`` items (growing leaves the new items undefined)."""
        if size > len(self._data):
            data = np.empty(_grown(len(self._data), size), dtype=self._data.dtype)
            data[: self._size] = self._data[: self._size]
            self._data = data
        self._size = max(size, 0)

    def put(self, start: int, items: np.ndarray) -> None:
        """Write ``items`` from index ``start`` on; the array ends after them."""
        end = start + len(items)
        self.resize(end)
        self._data[start:end] = items

    def append(self, items: np.ndarray) -> None:
        """Append ``items`` at the end."""
        self.put(self._size, items)


def search(x: np.ndarray | Steps, value: float, side: str = "left") -> int:
    """``np.searchsorted(x, value, side)`` for a sorted ``x`` of any dtype, without copying.

    Given a Python float, numpy would convert all of an integer ``x`` to float64 first (O(n)
    per lookup); here the value is converted to ``x``'s type instead, with the same answer
    (for a float32 ``x``, up to the rounding of ``value`` to float32).
    """
    if isinstance(x, Steps):
        return x.search(value, side)
    n = len(x)
    kind = x.dtype.kind
    if kind in "iu":
        if math.isnan(value) or value == math.inf:
            return n
        if value == -math.inf:
            return 0
        # left: the first item >= value, i.e. >= ceil(value); right: > value, > floor(value).
        key = math.ceil(value) if side == "left" else math.floor(value)
        info = np.iinfo(x.dtype)
        if key > info.max:
            return n
        if key < info.min:
            return 0
        return int(np.searchsorted(x, x.dtype.type(key), side=side))  # type: ignore[call-overload]
    if kind == "f" and x.dtype != np.float64:
        if math.isfinite(value) and abs(value) > float(np.finfo(x.dtype).max):
            value = math.copysign(math.inf, value)
        return int(np.searchsorted(x, x.dtype.type(value), side=side))  # type: ignore[call-overload]
    return int(np.searchsorted(x, value, side=side))  # type: ignore[call-overload]


def interp(value: float, xs: np.ndarray | Steps, ys: np.ndarray | Steps) -> float:
    """``np.interp(value, xs, ys)`` for a sorted ``xs`` of any dtype, in O(log n).

    (``np.interp`` first converts ``xs`` and ``ys`` to float64: O(n) unless they are.)
    """
    n = len(xs)
    i = search(xs, value, "right")  # xs[i - 1] <= value < xs[i]
    if i == 0:
        return float(ys[0])
    if i >= n:
        return float(ys[-1])
    x0, x1 = float(xs[i - 1]), float(xs[i])
    y0, y1 = float(ys[i - 1]), float(ys[i])
    if value == x0 or x1 == x0:
        return y0
    return y0 + (value - x0) * (y1 - y0) / (x1 - x0)


def _step_dtype(steps: np.ndarray) -> np.dtype:
    """The narrowest of int32, int64 and float64 that holds ``steps`` exactly."""
    if steps.dtype.kind == "f":
        if not np.all(np.isfinite(steps)) or not np.array_equal(steps, np.floor(steps)):
            return _STEP_DTYPES[2]
        lo, hi = float(steps.min()), float(steps.max())
        if lo >= -(2.0**63) and hi < 2.0**63:
            return _STEP_DTYPES[0] if lo >= -(2.0**31) and hi < 2.0**31 else _STEP_DTYPES[1]
        return _STEP_DTYPES[2]
    if steps.dtype.kind in "iub":
        lo, hi = int(steps.min()), int(steps.max())
        if lo >= -(2**31) and hi < 2**31:
            return _STEP_DTYPES[0]
        return _STEP_DTYPES[1] if lo >= -(2**63) and hi < 2**63 else _STEP_DTYPES[2]
    return _STEP_DTYPES[2]


class Steps:
    """Sorted steps, stored as just (first, stride) while they go up evenly, as they nearly
    always do (every step, or every n steps), else as an array (see :func:`_step_dtype`).

    Indexing (an int, a slice or an index array) and :func:`search` work on both forms without
    building the whole array; :meth:`to_array` builds it.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._first = 0
        self._stride: int | None = None  # known once two steps are held
        self._size = 0
        self._array: GrowingArray | None = None  # None while the steps go up evenly

    def __len__(self) -> int:
        return self._size if self._array is None else len(self._array)

    @property
    def regular(self) -> bool:
        """True while the steps are first + stride * i (and take no memory)."""
        return self._array is None

    @property
    def nbytes(self) -> int:
        return 0 if self._array is None else self._array.nbytes

    def to_array(self) -> np.ndarray:
        """The steps as an array: a view of the stored one, or a new int64 array."""
        if self._array is not None:
            return self._array.view
        return self._first + (self._stride or 1) * np.arange(self._size, dtype=np.int64)

    def __getitem__(self, key: Any) -> Any:
        if self._array is not None:
            return self._array.view[key]
        stride = self._stride or 1
        if isinstance(key, slice):
            lo, hi, step = key.indices(self._size)
            return self._first + stride * np.arange(lo, hi, step, dtype=np.int64)
        if isinstance(key, int | np.integer):
            i = int(key) + (self._size if key < 0 else 0)
            if not 0 <= i < self._size:
                raise IndexError(f"index {key} is out of bounds for {self._size} steps")
            return np.int64(self._first + stride * i)
        index = np.asarray(key)
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        if len(index) and (index.min() < -self._size or index.max() >= self._size):
            raise IndexError(f"an index is out of bounds for {self._size} steps")
        return self._first + stride * np.where(index < 0, index + self._size, index)

    def min(self) -> Any:
        return self[0] if self._array is None else self._array.view.min()

    def max(self) -> Any:
        return self[-1] if self._array is None else self._array.view.max()

    def search(self, value: float, side: str = "left") -> int:
        """``np.searchsorted(steps, value, side)``, in O(1) while the steps go up evenly."""
        if self._array is not None:
            return search(self._array.view, value, side)
        n = self._size
        if math.isnan(value) or value == math.inf:
            return n
        if value == -math.inf or n == 0:
            return 0
        first, stride = self._first, self._stride or 1
        q = (value - first) / stride
        if abs(q) > 2 * n + 2:
            return 0 if q < 0 else n
        i = math.ceil(q) if side == "left" else math.floor(q) + 1
        i = min(max(i, 0), n)

        # Correct a rounding of q: left wants the first step >= value, right the first > value.
        def before(j: int) -> bool:
            step = first + stride * j
            return step < value if side == "left" else step <= value

        while i > 0 and not before(i - 1):
            i -= 1
        while i < n and before(i):
            i += 1
        return i

    def resize(self, size: int) -> None:
        """Keep the first ``size`` steps."""
        if self._array is not None:
            self._array.resize(size)
            return
        self._size = max(min(size, self._size), 0)
        if self._size < 2:
            self._stride = None

    def append(self, steps: np.ndarray) -> None:
        """Append ``steps``, all greater than the last step held."""
        if not len(steps):
            return
        if self._array is None:
            if self._continues(steps):
                return
            held = self.to_array()
            dtype = _step_dtype(held) if len(held) else _STEP_DTYPES[0]
            self._array = GrowingArray(dtype, max(self._capacity, len(held)))
            self._array.append(held)
        dtype = _step_dtype(steps)
        if _STEP_DTYPES.index(dtype) > _STEP_DTYPES.index(self._array.dtype):
            self._array.astype(dtype)
        self._array.append(steps)

    def _continues(self, steps: np.ndarray) -> bool:
        """Take ``steps`` in if they continue the even progression; False if they do not."""
        if steps.dtype.kind not in "iu":
            if steps.dtype.kind != "f" or not np.all(np.isfinite(steps)):
                return False
            if not np.array_equal(steps, np.floor(steps)):
                return False
        lo, hi = float(steps[0]), float(steps[-1])
        if not (lo > -_EXACT_STEPS and hi < _EXACT_STEPS):
            return False
        first_new = int(steps[0])
        stride = self._stride
        if self._size == 1:
            stride = first_new - self._first
        elif self._size >= 2:
            last = self._first + (stride or 1) * (self._size - 1)
            if first_new - last != stride:
                return False
        if len(steps) > 1:
            diffs = np.diff(steps)
            stride = int(diffs[0]) if stride is None else stride
            if not np.all(diffs == stride):
                return False
        if stride is not None and stride <= 0:
            return False
        if self._size == 0:
            self._first = first_new
        self._stride = stride
        self._size += len(steps)
        return True


class SeriesBuffer:
    """Steps, values, wall times (unix s) and attempts of one key, in step order, compactly.

    ``values`` is a view of what is stored; the steps are a :class:`Steps`
    (:attr:`step_axis`). Wall times are stored as float32 seconds since :attr:`wall_origin`
    (:attr:`wall_offsets`; precise to about 2 ms after a day, 0.1 s after a month).
    :attr:`steps`, :attr:`walls` and :attr:`attempts` build full arrays on demand.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._steps = Steps(capacity)
        self._values = GrowingArray(np.float64, capacity)
        self._walls = GrowingArray(np.float32, capacity)
        self._wall_origin: float | None = None
        self._newest_wall: float | None = None  # exact, until a truncation
        # The attempts, run-length encoded: run i starts at index _runs_at[i].
        self._runs_at: list[int] = []
        self._runs_attempt: list[int] = []
        self._changed_from: int | None = None
        self._walls_sorted = True

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def steps(self) -> np.ndarray:
        """The steps as an array (see :meth:`Steps.to_array`; :attr:`step_axis` builds none)."""
        return self._steps.to_array()

    @property
    def step_axis(self) -> Steps:
        """The steps as stored."""
        return self._steps

    @property
    def values(self) -> np.ndarray:
        """A view of the values (float64, as logged)."""
        return self._values.view

    @property
    def wall_origin(self) -> float:
        """Unix seconds that :attr:`wall_offsets` count from (the first wall time appended)."""
        return 0.0 if self._wall_origin is None else self._wall_origin

    @property
    def wall_offsets(self) -> np.ndarray:
        """A view of the wall times as float32 seconds since :attr:`wall_origin`."""
        return self._walls.view

    @property
    def walls(self) -> np.ndarray:
        """The wall times, unix seconds (float64; a new array)."""
        return self._walls.view.astype(np.float64) + self.wall_origin

    @property
    def newest_wall(self) -> float | None:
        """The wall time of the last point, unix seconds (None when empty)."""
        if not len(self):
            return None
        if self._newest_wall is None:
            self._newest_wall = self.wall_origin + float(self._walls.view[-1])
        return self._newest_wall

    @property
    def attempts(self) -> np.ndarray:
        """The attempt that logged each point (int32; a new array)."""
        if not self._runs_at:
            return np.empty(0, dtype=np.int32)
        lengths = np.diff(np.append(np.asarray(self._runs_at, dtype=np.int64), len(self)))
        return np.repeat(np.asarray(self._runs_attempt, dtype=np.int32), lengths)

    def attempt_breaks(self, indices: np.ndarray) -> np.ndarray:
        """Positions ``j`` in ``indices`` (sorted) whose point's attempt differs from that of
        ``indices[j - 1]``: where a line through them must break."""
        if len(self._runs_at) < 2 or len(indices) < 2:
            return np.empty(0, dtype=np.intp)
        runs = np.searchsorted(np.asarray(self._runs_at), indices, side="right") - 1
        attempts = np.asarray(self._runs_attempt)[runs]
        return np.flatnonzero(attempts[1:] != attempts[:-1]) + 1

    @property
    def walls_sorted(self) -> bool:
        """True while the wall times never go back (they can, if the clock was changed)."""
        return self._walls_sorted

    @property
    def capacity(self) -> int:
        """Points that fit before the buffers next grow."""
        return self._values.capacity

    def nbytes(self) -> int:
        """Bytes allocated for the points (capacity included)."""
        return self._steps.nbytes + self._values.nbytes + self._walls.nbytes

    def truncate_from(self, step: float) -> bool:
        """Drop every point at ``step`` or later (a resumed attempt redoes them). True if any."""
        size = self._steps.search(step, "left")
        if size == len(self):
            return False
        for array in (self._steps, self._values, self._walls):
            array.resize(size)
        while self._runs_at and self._runs_at[-1] >= size:
            self._runs_at.pop()
            self._runs_attempt.pop()
        self._newest_wall = None
        self._mark(size)
        if not self._walls_sorted:
            self._walls_sorted = bool(np.all(np.diff(self.wall_offsets) >= 0))
        return True

    def append(
        self,
        steps: np.ndarray,
        values: np.ndarray,
        walls: np.ndarray,
        attempts: np.ndarray | None = None,
    ) -> None:
        """Append points in step order; buffered points at or after the first new step go.

        ``attempts`` defaults to attempt 1 for every point.
        """
        if len(steps) == 0:
            return
        steps = np.asarray(steps)
        self.truncate_from(float(steps[0]))
        start = len(self)
        walls = np.asarray(walls, dtype=np.float64)
        if self._wall_origin is None:
            finite = np.flatnonzero(np.isfinite(walls))
            self._wall_origin = float(walls[finite[0]]) if len(finite) else 0.0
        offsets = (walls - self._wall_origin).astype(np.float32)
        if self._walls_sorted:
            before = self._walls.view[-1] if start else -np.inf
            self._walls_sorted = bool(offsets[0] >= before and np.all(offsets[1:] >= offsets[:-1]))
        self._steps.append(steps)
        self._values.append(np.asarray(values, dtype=np.float64))
        self._walls.append(offsets)
        self._newest_wall = float(walls[-1])
        self._append_attempts(start, attempts, len(steps))
        self._mark(start)

    def _append_attempts(self, start: int, attempts: np.ndarray | None, n: int) -> None:
        if attempts is None:
            at, ids = [start], [1]
        else:
            attempts = np.asarray(attempts)
            changes = np.flatnonzero(attempts[1:] != attempts[:-1]) + 1
            at = [start, *(changes + start).tolist()]
            ids = attempts[np.concatenate(([0], changes))].tolist()
        for index, attempt in zip(at, ids, strict=True):
            if self._runs_attempt and self._runs_attempt[-1] == attempt:
                continue
            self._runs_at.append(index)
            self._runs_attempt.append(int(attempt))

    def take_changes(self) -> int | None:
        """The lowest index changed since the previous call (None: nothing changed)."""
        changed, self._changed_from = self._changed_from, None
        return changed

    def _mark(self, index: int) -> None:
        if self._changed_from is None or index < self._changed_from:
            self._changed_from = index
