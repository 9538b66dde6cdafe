"""One metric of one run as growing numpy arrays. Qt-free.

:class:`GrowingArray` doubles its capacity when full, so appending is amortised O(new points)
and readers get views without copying. :class:`SeriesBuffer` keeps a key's steps, values and
wall times in step order and remembers the lowest index changed since its consumer last
looked (:meth:`SeriesBuffer.take_changes`), so smoothing and downsampling redo only the tail.
"""

from __future__ import annotations

import numpy as np


class GrowingArray:
    """A 1-D numpy array that grows by doubling; :attr:`view` is valid until the next change."""

    def __init__(self, dtype: type = np.float64, capacity: int = 1024) -> None:
        self._data: np.ndarray = np.empty(max(capacity, 1), dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """How many items fit before the next reallocation."""
        return len(self._data)

    @property
    def view(self) -> np.ndarray:
        """The items, without copying."""
        return self._data[: self._size]

    def resize(self, size: int) -> None:
        """Keep the first ``size`` items (growing leaves the new items undefined)."""
        if size > len(self._data):
            capacity = len(self._data)
            while capacity < size:
                capacity *= 2
            data = np.empty(capacity, dtype=self._data.dtype)
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


class SeriesBuffer:
    """Steps (as floats), values, wall times (unix s) and attempts of one key, in step order."""

    def __init__(self, capacity: int = 1024) -> None:
        self._steps = GrowingArray(np.float64, capacity)
        self._values = GrowingArray(np.float64, capacity)
        self._walls = GrowingArray(np.float64, capacity)
        self._attempts = GrowingArray(np.int32, capacity)
        self._changed_from: int | None = None
        self._walls_sorted = True

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def steps(self) -> np.ndarray:
        """A view of the steps (float64, exact up to 2**53)."""
        return self._steps.view

    @property
    def values(self) -> np.ndarray:
        """A view of the values."""
        return self._values.view

    @property
    def walls(self) -> np.ndarray:
        """A view of the wall times, unix seconds."""
        return self._walls.view

    @property
    def attempts(self) -> np.ndarray:
        """A view of the attempt that logged each point."""
        return self._attempts.view

    @property
    def walls_sorted(self) -> bool:
        """True while the wall times never go back (they can, if the clock was changed)."""
        return self._walls_sorted

    @property
    def capacity(self) -> int:
        """Points that fit before the buffers next double."""
        return self._steps.capacity

    def truncate_from(self, step: float) -> bool:
        """Drop every point at ``step`` or later (a resumed attempt redoes them). True if any."""
        size = int(np.searchsorted(self.steps, step, side="left"))
        if size == len(self):
            return False
        for array in (self._steps, self._values, self._walls, self._attempts):
            array.resize(size)
        self._mark(size)
        if not self._walls_sorted:
            self._walls_sorted = bool(np.all(np.diff(self.walls) >= 0))
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
        steps = np.asarray(steps, dtype=np.float64)
        self.truncate_from(steps[0])
        start = len(self)
        walls = np.asarray(walls, dtype=np.float64)
        if self._walls_sorted and len(walls):
            before = self.walls[-1] if start else -np.inf
            self._walls_sorted = bool(walls[0] >= before and np.all(np.diff(walls) >= 0))
        self._steps.append(steps)
        self._values.append(np.asarray(values, dtype=np.float64))
        self._walls.append(walls)
        self._attempts.append(
            np.ones(len(steps), dtype=np.int32) if attempts is None else np.asarray(attempts)
        )
        self._mark(start)

    def take_changes(self) -> int | None:
        """The lowest index changed since the previous call (None: nothing changed)."""
        changed, self._changed_from = self._changed_from, None
        return changed

    def _mark(self, index: int) -> None:
        if self._changed_from is None or index < self._changed_from:
            self._changed_from = index
