"""Brute-force answers for the journal's summaries and viewport reads, in plain Python.

Written independently of trainer.journal.summaries/envelope (no numpy reductions shared), so
a test that compares the two can fail.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from trainer.journal import summaries as sm
from trainer.journal.reader import JournalReader


def visible(folder: Path, key: str) -> list[tuple[int, float, int]]:
    """(step, value, wall_ms) of the key's visible points, from the reader's full series."""
    with JournalReader(folder) as reader:
        created = reader.run_info().created
        series = reader.series(key)
    return [
        (int(s), float(v), round((w - created) * 1000.0))
        for s, v, w in zip(series.steps, series.values, series.walls, strict=True)
    ]


def summary_rows(points: list[tuple[int, float, int]], level: int) -> dict[int, dict]:
    """What the summary rows of ``level`` must hold, by bucket."""
    out: dict[int, dict] = {}
    for step, value, wall in sorted(points):
        b = step // sm.size(level)
        row = out.get(b)
        finite = math.isfinite(value)
        if row is None:
            row = out[b] = {
                "n": 0, "nonfinite": 0, "sum": 0.0, "min": math.inf, "max": -math.inf,
                "first_step": step, "first_value": value, "first_wall": wall,
                "min_step": step, "max_step": step, "min_wall": wall, "max_wall": wall,
            }  # fmt: skip
        row["n"] += 1
        row["nonfinite"] += not finite
        if finite:
            row["sum"] += value
            if value < row["min"]:
                row["min"], row["min_step"], row["min_wall"] = value, step, wall
            if value > row["max"]:
                row["max"], row["max_step"], row["max_wall"] = value, step, wall
        row["last_step"], row["last_value"], row["last_wall"] = step, value, wall
    return out


def check_summaries(folder: Path) -> int:
    """Assert every key's stored summaries equal the brute-force ones; returns rows checked."""
    conn = sqlite3.connect(f"file:{folder / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        keys = conn.execute("SELECT id, name FROM metric_key").fetchall()
        checked = 0
        for key_id, name in keys:
            points = visible(folder, name)
            for level in range(1, sm.LEVELS + 1):
                want = summary_rows(points, level)
                got = {
                    r[0]: dict(zip(sm.FIELDS[1:], r[1:], strict=True))
                    for r in conn.execute(
                        f"SELECT {', '.join(sm.FIELDS)} FROM summary WHERE key_id = ? "
                        "AND level = ?",
                        (key_id, level),
                    )
                }
                assert set(got) == set(want), (name, level, sorted(set(got) ^ set(want))[:5])
                for bucket, row in want.items():
                    have = got[bucket]
                    for field, value in row.items():
                        if field == "sum":
                            assert math.isclose(have[field], value, rel_tol=1e-9, abs_tol=1e-9)
                        elif isinstance(value, float) and math.isnan(value):
                            assert have[field] is None or math.isnan(have[field])
                        else:
                            assert have[field] == value, (name, level, bucket, field)
                    checked += 1
        return checked
    finally:
        conn.close()


def column_of(x: float, x0: float, x1: float, width: int) -> int | None:
    if x < x0 or x > x1:
        return None
    if x == x1:
        return width - 1
    return min(math.floor((x - x0) * (width / (x1 - x0))), width - 1)


def envelope(
    points: list[tuple[float, float]], x0: float, x1: float, width: int
) -> tuple[dict[int, tuple[float, float]], dict[int, int]]:
    """Per pixel column: (lowest, highest) finite value, and the count of non-finite ones."""
    extremes: dict[int, tuple[float, float]] = {}
    nonfinite: dict[int, int] = {}
    for x, y in points:
        col = column_of(x, x0, x1, width)
        if col is None:
            continue
        if not math.isfinite(y):
            nonfinite[col] = nonfinite.get(col, 0) + 1
            continue
        lo, hi = extremes.get(col, (math.inf, -math.inf))
        extremes[col] = (min(lo, y), max(hi, y))
    return extremes, nonfinite
