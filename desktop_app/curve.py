"""One run's curve, followed incrementally: a growing point buffer fed by ``JournalReader.tail``.

Qt-free. :class:`CurveFeed` does the blocking reads (call it from a worker thread);
:class:`CurveBuffer` keeps the points in numpy arrays that double when full, so appending is
amortised O(new points) and the chart can draw views of them without copying.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.journal.reader import JournalReader, TailBatch


class CurveBuffer:
    """Steps and values of one curve, in step order."""

    def __init__(self, capacity: int = 1024) -> None:
        self._steps = np.empty(max(capacity, 1), dtype=np.float64)
        self._values = np.empty(max(capacity, 1), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def steps(self) -> np.ndarray:
        """A view of the buffered steps (valid until the next change)."""
        return self._steps[: self._size]

    @property
    def values(self) -> np.ndarray:
        """A view of the buffered values (valid until the next change)."""
        return self._values[: self._size]

    def truncate_from(self, step: int) -> None:
        """Drop every point at ``step`` or later (a resumed attempt redoes them)."""
        self._size = int(np.searchsorted(self.steps, step, side="left"))

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Append points whose steps follow the buffered ones."""
        n = len(steps)
        if n == 0:
            return
        needed = self._size + n
        if needed > len(self._steps):
            capacity = len(self._steps)
            while capacity < needed:
                capacity *= 2
            self._steps = _grown(self._steps, self._size, capacity)
            self._values = _grown(self._values, self._size, capacity)
        self._steps[self._size : needed] = steps
        self._values[self._size : needed] = values
        self._size = needed

    def apply(self, batch: TailBatch, key: str) -> bool:
        """Apply a tail batch (new attempts first, then ``key``'s points). True if changed."""
        before = self._size
        changed = False
        for _attempt, start_step in batch.new_attempts:
            self.truncate_from(start_step)
            changed = changed or self._size != before
        series = batch.points.get(key)
        if series is not None and len(series):
            self.extend(series.steps, series.values)
            changed = True
        return changed


def _grown(array: np.ndarray, size: int, capacity: int) -> np.ndarray:
    out = np.empty(capacity, dtype=array.dtype)
    out[:size] = array[:size]
    return out


class CurveFeed:
    """Follows one run folder's journal. Not thread-safe: use it from one thread at a time."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder
        self.key = key
        self._reader: JournalReader | None = None
        self._closed = False

    def poll(self) -> TailBatch:
        """What is new since the last poll (the first returns everything).

        Raises :class:`trainer.errors.JournalError` for an unreadable journal.
        """
        if self._closed:
            raise ValueError("the feed is closed")
        if self._reader is None:
            self._reader = JournalReader(self.folder)
        return self._reader.tail()

    def close(self) -> None:
        """Close the reader; idempotent."""
        self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
