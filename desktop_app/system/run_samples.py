"""One run's own system figures, from its journal's ``system_sample`` rows. Qt-free.

The trainer samples its process every 2 s: CPU %, RSS and, per GPU it uses, torch's
``torch_allocated``/``torch_reserved`` with the device's ``mem_used``/``mem_total`` and
``util``. :class:`SampleFeed` does the blocking reads and turns rows into numpy columns (call
it from the IO worker); :class:`SampleHistory` keeps them for the chart on the GUI thread.
"""

from __future__ import annotations

import logging
import math
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import TrainDeskError
from trainer.journal.reader import JournalReader, SampleRow

log = logging.getLogger(__name__)

#: The per-GPU figures kept as history, in bytes.
MEMORY_KINDS = ("torch_allocated", "torch_reserved", "mem_used")
SeriesKey = tuple[int, str]  # (GPU index, kind)


@dataclass(frozen=True)
class RunGpu:
    """One GPU's figures in one sample of a run; None is "n/a"."""

    index: int
    torch_allocated: int | None = None
    torch_reserved: int | None = None
    mem_used: int | None = None
    mem_total: int | None = None
    util: float | None = None


@dataclass(frozen=True)
class RunFigures:
    """A run's newest sample: its process's CPU % and RSS, and its GPUs."""

    wall: float
    cpu_percent: float | None
    rss: int | None
    gpus: list[RunGpu]


def figures_from(row: SampleRow) -> RunFigures:
    """Read one sample row; malformed GPU entries are skipped, odd figures become None."""
    gpus: list[RunGpu] = []
    for entry in row.gpus if isinstance(row.gpus, list) else ():
        index = _integer(entry.get("index")) if isinstance(entry, dict) else None
        if index is None:
            continue
        gpus.append(
            RunGpu(
                index=index,
                torch_allocated=_integer(entry.get("torch_allocated")),
                torch_reserved=_integer(entry.get("torch_reserved")),
                mem_used=_integer(entry.get("mem_used")),
                mem_total=_integer(entry.get("mem_total")),
                util=_number(entry.get("util")),
            )
        )
    return RunFigures(
        wall=float(row.wall),
        cpu_percent=_number(row.cpu_percent),
        rss=_integer(row.rss),
        gpus=sorted(gpus, key=lambda g: g.index),
    )


@dataclass
class SampleBatch:
    """New samples as columns: ``series`` are aligned with ``walls`` (NaN where missing)."""

    walls: np.ndarray
    series: dict[SeriesKey, np.ndarray] = field(default_factory=dict)
    latest: RunFigures | None = None
    run_name: str | None = None

    def __len__(self) -> int:
        return len(self.walls)


def batch_from_rows(rows: Sequence[SampleRow], run_name: str | None = None) -> SampleBatch:
    """Columns of ``rows`` (in id order): wall times and each GPU's memory figures."""
    walls = np.array([float(r.wall) for r in rows], dtype=np.float64)
    series: dict[SeriesKey, np.ndarray] = {}
    latest: RunFigures | None = None
    for position, row in enumerate(rows):
        latest = figures_from(row)
        for gpu in latest.gpus:
            for kind in MEMORY_KINDS:
                value = getattr(gpu, kind)
                if value is None:
                    continue
                column = series.get((gpu.index, kind))
                if column is None:
                    column = series[(gpu.index, kind)] = np.full(len(rows), np.nan)
                column[position] = value
    return SampleBatch(walls=walls, series=series, latest=latest, run_name=run_name)


class SampleFeed:
    """Follows one run folder's system samples. Not thread-safe: one thread at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._reader: JournalReader | None = None
        self._last_id = 0
        self._closed = False

    def poll(self) -> SampleBatch:
        """The samples since the last poll (the first poll returns all of them).

        Raises :class:`trainer.errors.JournalError` for an unreadable journal.
        """
        if self._closed:
            raise ValueError("the feed is closed")
        name = None
        if self._reader is None:
            self._reader = JournalReader(self.folder)
            name = self._reader.run_info().name
        rows = self._reader.samples(self._last_id)
        if rows:
            self._last_id = rows[-1].id
        return batch_from_rows(rows, name)

    def close(self) -> None:
        """Close the reader; idempotent."""
        self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class _Column:
    """A float64 array that doubles its capacity when full."""

    def __init__(self, capacity: int = 256) -> None:
        self._data = np.empty(max(capacity, 1), dtype=np.float64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def view(self) -> np.ndarray:
        return self._data[: self._size]

    def extend(self, values: np.ndarray) -> None:
        needed = self._size + len(values)
        if needed > len(self._data):
            capacity = len(self._data)
            while capacity < needed:
                capacity *= 2
            grown = np.empty(capacity, dtype=np.float64)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = values
        self._size = needed


class SampleHistory:
    """All of one run's samples seen so far: wall times and per-GPU memory series."""

    def __init__(self) -> None:
        self._walls = _Column()
        self._series: dict[SeriesKey, _Column] = {}
        self.latest: RunFigures | None = None
        self.run_name: str | None = None

    def __len__(self) -> int:
        return len(self._walls)

    @property
    def walls(self) -> np.ndarray:
        """A view of the wall times, unix seconds (valid until the next change)."""
        return self._walls.view

    def keys(self) -> list[SeriesKey]:
        return sorted(self._series)

    def gpu_indexes(self) -> list[int]:
        return sorted({index for index, _kind in self._series})

    def series(self, index: int, kind: str) -> np.ndarray:
        """A view aligned with :attr:`walls` (NaN where a sample lacked the figure)."""
        column = self._series.get((index, kind))
        return column.view if column is not None else np.full(len(self), np.nan)

    def extend(self, batch: SampleBatch) -> bool:
        """Append a batch; True if anything changed."""
        if batch.run_name:
            self.run_name = batch.run_name
        if not len(batch):
            return False
        before = len(self)
        for key in batch.series.keys() - self._series.keys():
            column = self._series[key] = _Column()
            column.extend(np.full(before, np.nan))
        for key, column in self._series.items():
            column.extend(batch.series.get(key, np.full(len(batch), np.nan)))
        self._walls.extend(batch.walls)
        self.latest = batch.latest
        return True


def read_run_pids(runs: Iterable[tuple[str, str]]) -> dict[int, str]:
    """pid -> run name for ``(run folder, name)`` pairs, from each journal's run row.

    Blocking (opens each journal): call it off the GUI thread. Unreadable runs and runs of
    other hosts (a copied folder) are skipped.
    """
    pids: dict[int, str] = {}
    here = socket.gethostname()
    for path, name in runs:
        try:
            with JournalReader(Path(path)) as reader:
                info = reader.run_info()
        except (TrainDeskError, OSError, sqlite3.Error) as exc:
            log.debug("no pid for %s: %s", path, exc)
            continue
        if info.pid and info.host == here:  # another host's pid means nothing here
            pids[int(info.pid)] = name
    return pids


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
