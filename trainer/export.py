"""Exporting runs' metrics as CSV: one format for ``trainer export`` and the desktop app.

Qt-free and torch-free. Columns: ``key, step, value, wall_time, attempt`` (values written
with ``repr`` so they read back exactly), with a leading ``run`` column for several runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from trainer.journal.reader import JournalReader, Series

CSV_HEADER = ("key", "step", "value", "wall_time", "attempt")


def read_series(
    folder: Path, keys: Iterable[str] | None = None, *, all_attempts: bool = False
) -> dict[str, Series]:
    """The series of one run, by key (all keys, or those of ``keys`` it has); JournalError
    if its journal cannot be read."""
    with JournalReader(folder) as reader:
        known = reader.keys()
        wanted = known if keys is None else [k for k in keys if k in known]
        return {k: reader.series(k, include_superseded=all_attempts) for k in wanted}


def write_csv(
    fh: TextIO, runs: Sequence[tuple[str, Mapping[str, Series]]], *, run_column: bool
) -> int:
    """Write the series of ``runs`` ((run name, series by key)) as CSV; returns the points."""
    import csv

    writer = csv.writer(fh)
    writer.writerow(["run", *CSV_HEADER] if run_column else list(CSV_HEADER))
    count = 0
    for name, series in runs:
        prefix = [name] if run_column else []
        for key, s in series.items():
            rows = zip(
                s.steps.tolist(), s.values.tolist(), s.walls.tolist(), s.attempts.tolist(),
                strict=True,
            )  # fmt: skip
            for step, value, wall, attempt in rows:
                writer.writerow([*prefix, key, step, repr(value), f"{wall:.3f}", attempt])
                count += 1
    return count
