"""Metric files as points: CSV (``trainer export``'s long format, or one column per metric)
and JSON (``trainer export``'s document, or a list / JSON lines of per-step records)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainer.errors import UsageError

#: (key, step, value, wall time or None)
Point = tuple[str, int, float, float | None]

STEP_COLUMNS = ("step", "global_step", "_step", "iteration", "iter", "epoch")
TIME_COLUMNS = ("wall_time", "time", "timestamp", "_timestamp", "wall")
_SKIP = {"attempt", "run", "_runtime"}


def _number(text: Any, where: str) -> float | None:
    if text is None or text == "":
        return None
    if isinstance(text, bool):
        return float(text)
    if isinstance(text, int | float):
        return float(text)
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {text!r} is not a number: fix or drop that value") from None


def _pick(columns: Iterable[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def read_csv(path: Path, run: str | None = None) -> list[Point]:
    """Points of a CSV file: ``key,step,value[,wall_time]`` rows, or a ``step`` column and
    one column per metric."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if not columns:
            raise UsageError(f"{path} is empty: nothing to import")
        long = {"key", "step", "value"} <= {c.lower() for c in columns}
        rows = list(reader)
    if long:
        return _long_rows(path, rows, columns, run)
    step_col = _pick(columns, STEP_COLUMNS)
    if step_col is None:
        raise UsageError(
            f"{path} has no step column (one of {', '.join(STEP_COLUMNS)}) and is not "
            "key,step,value rows: add a step column"
        )
    time_col = _pick(columns, TIME_COLUMNS)
    keys = [c for c in columns if c not in (step_col, time_col) and c.lower() not in _SKIP]
    points: list[Point] = []
    for n, row in enumerate(rows, start=2):
        step = _number(row.get(step_col), f"{path} line {n}, column {step_col}")
        if step is None:
            continue
        wall = (
            _number(row.get(time_col), f"{path} line {n}, column {time_col}") if time_col else None
        )
        for key in keys:
            value = _number(row.get(key), f"{path} line {n}, column {key}")
            if value is not None:
                points.append((key, int(step), value, wall))
    return points


def _long_rows(
    path: Path, rows: list[dict[str, str]], columns: list[str], run: str | None
) -> list[Point]:
    col = {c.lower(): c for c in columns}
    if "run" in col:
        names = sorted({r[col["run"]] for r in rows})
        if run is None and len(names) > 1:
            raise UsageError(
                f"{path} holds {len(names)} runs ({', '.join(names[:5])}): "
                "import one with --run NAME"
            )
        if run is not None:
            rows = [r for r in rows if r[col["run"]] == run]
            if not rows:
                raise UsageError(f"{path} has no run {run!r}: it has {', '.join(names[:5])}")
    time_col = _pick(columns, TIME_COLUMNS)
    points: list[Point] = []
    for n, row in enumerate(rows, start=2):
        where = f"{path} line {n}"
        step = _number(row[col["step"]], where + ", column step")
        value = _number(row[col["value"]], where + ", column value")
        if step is None or value is None:
            continue
        wall = _number(row.get(time_col), where) if time_col else None
        points.append((row[col["key"]], int(step), value, wall))
    return points


def read_json(path: Path) -> tuple[list[Point], dict[str, Any]]:
    """Points of a JSON file, and the run's config if it has one.

    ``trainer export --format json``'s document; a list of per-step records; or JSON lines
    of them. A record holds a step (one of STEP_COLUMNS) and numbers, nested dicts as
    ``outer/inner`` keys.
    """
    text = path.read_text(encoding="utf-8")
    try:
        doc: Any = json.loads(text)
    except ValueError:
        try:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise UsageError(
                f"{path} is neither JSON nor JSON lines ({exc}): check the file"
            ) from None
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict):
        return _export_doc(path, doc), dict((doc.get("run") or {}).get("config") or {})
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise UsageError(
            f"{path} is not a list of per-step records nor a `trainer export` document: "
            "see docs/migration.md for the formats"
        )
    points: list[Point] = []
    for n, record in enumerate(doc, start=1):
        flat = dict(_flatten(record))
        step_key = _pick(flat, STEP_COLUMNS)
        if step_key is None:
            raise UsageError(f"{path} record {n} has no step (one of {', '.join(STEP_COLUMNS)})")
        step = _number(flat.pop(step_key), f"{path} record {n}, {step_key}")
        time_key = _pick(flat, TIME_COLUMNS)
        wall = _number(flat.pop(time_key), f"{path} record {n}") if time_key else None
        for key, value in flat.items():
            if key.lower() in _SKIP or isinstance(value, str) or value is None:
                continue
            number = _number(value, f"{path} record {n}, {key}")
            if step is not None and number is not None:
                points.append((key, int(step), number, wall))
    return points, {}


def _export_doc(path: Path, doc: Mapping[str, Any]) -> list[Point]:
    points: list[Point] = []
    for key, series in doc["metrics"].items():
        steps, values = series.get("steps") or [], series.get("values") or []
        walls = series.get("wall_times") or [None] * len(steps)
        if len(steps) != len(values):
            raise UsageError(
                f"{path}: metric {key!r} has {len(steps)} steps but {len(values)} values"
            )
        for step, value, wall in zip(steps, values, walls, strict=False):
            number = _number(value, f"{path}, {key}")
            if number is not None:
                points.append((key, int(step), number, wall))
    return points


def _flatten(record: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + "/")
        elif _is_number(value) or name.lower() in STEP_COLUMNS + TIME_COLUMNS:
            yield name, value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
