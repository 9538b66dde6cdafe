"""Exporting runs' metrics as CSV: one format for ``trainer export`` and the desktop app.

Qt-free and torch-free. Columns: ``key, step, value, wall_time, attempt`` (values written
with ``repr`` so they read back exactly), with a leading ``run`` column for several runs.
:func:`stream_csv` and :func:`stream_json` read the journal in chunks as they write, so an
export of any length takes constant memory (``trainer export``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from trainer.journal.reader import JournalReader, Series
from trainer.journal.stream import iter_series, pin

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


def _csv_rows(prefix: list[str], key: str, s: Series) -> Iterable[list[object]]:
    rows = zip(
        s.steps.tolist(), s.values.tolist(), s.walls.tolist(), s.attempts.tolist(), strict=True
    )
    return ([*prefix, key, step, repr(value), f"{wall:.3f}", attempt]
            for step, value, wall, attempt in rows)  # fmt: skip


def stream_csv(
    fh: TextIO,
    reader: JournalReader,
    keys: Iterable[str],
    *,
    all_attempts: bool = False,
    run_name: str | None = None,
) -> int:
    """Write ``keys``' points as :func:`write_csv` does (a ``run`` column when ``run_name`` is
    given), reading them in chunks; returns the points written."""
    import csv

    writer = csv.writer(fh)
    writer.writerow(["run", *CSV_HEADER] if run_name is not None else list(CSV_HEADER))
    prefix = [run_name] if run_name is not None else []
    count = 0
    for key in keys:
        for chunk in iter_series(reader, key, include_superseded=all_attempts):
            writer.writerows(_csv_rows(prefix, key, chunk))
            count += len(chunk)
    return count


#: The JSON export's arrays per key, and the Series column each comes from.
_JSON_COLUMNS = (("steps", "steps"), ("values", "values"), ("wall_times", "walls"),
                 ("attempts", "attempts"))  # fmt: skip


def stream_json(
    fh: TextIO,
    reader: JournalReader,
    keys: Iterable[str],
    *,
    run: dict[str, Any],
    events: list[dict[str, Any]],
    all_attempts: bool = False,
) -> int:
    """Write ``{"run": ..., "metrics": {key: {"steps": [...], "values": [...], "wall_times":
    [...], "attempts": [...]}}, "events": [...]}``, each array read in chunks (one pass over
    the key per array); returns the points written. Non-finite values are written as
    Python's json module writes them (NaN, Infinity)."""
    fh.write('{\n "run": ' + json.dumps(run, default=str) + ',\n "metrics": {')
    count = 0
    for k, key in enumerate(keys):
        fh.write(("," if k else "") + "\n  " + json.dumps(key) + ": {")
        until = pin(reader, key)  # the same points in every pass, even if live
        for c, (name, column) in enumerate(_JSON_COLUMNS):
            fh.write(("," if c else "") + f'\n   "{name}": [')
            written = 0
            if until is None:
                fh.write("]")
                continue
            chunks = iter_series(reader, key, include_superseded=all_attempts, until=until)
            for chunk in chunks:
                text = json.dumps(getattr(chunk, column).tolist())[1:-1]
                fh.write((", " if written else "") + text)
                written += len(chunk)
            fh.write("]")
            if name == "steps":
                count += written
        fh.write("\n  }")
    fh.write('\n },\n "events": ' + json.dumps(events, default=str) + "\n}\n")
    return count
