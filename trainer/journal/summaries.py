"""Multi-resolution summaries of every metric key, kept beside the points. Qt-free, torch-free.

A level-``l`` summary row covers the steps ``[bucket * size(l), (bucket + 1) * size(l))`` of
one key: level 1 buckets hold 64 steps, each level eight times more. A row keeps the count,
the non-finite count, the sum, the finite minimum and maximum, and the first, last, lowest and
highest points with their steps and wall times (ms since the run was created). Every field
combines exactly (:func:`combine`), so a coarse row is the same whether built from the points
or from the rows below it, and a view of any width can be drawn from a few rows per pixel
column without ever averaging a spike or a divergence away.

The summaries describe the *visible* points: a resumed attempt that restarts from step ``s``
drops, in the same transaction that records the attempt, every row that covers a step
``>= s`` and rebuilds the partial ones from what is still visible (:func:`truncate_from`).
The journal's writer updates them in the transaction that inserts the points
(:class:`SummaryKeeper`), so a kill -9 can never leave them disagreeing with the points.

Why over 400 lines: the summary format, its fold on commit, its truncation on resume and its
build for an older journal share invariants that every one of them must keep; they are checked
together.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
from collections.abc import Iterator

import numpy as np

BASE = 64  # steps per level-1 bucket
FANOUT = 8  # level-l buckets per level-(l+1) bucket
LEVELS = 8  # level 8 buckets hold 64 * 8**7 (134M) steps

#: A summary row (or a raw point seen as a row of one point), as numpy stores it.
ROW = np.dtype(
    [
        ("bucket", np.int64),
        ("n", np.int64),
        ("nonfinite", np.int64),
        ("sum", np.float64),
        ("min", np.float64),
        ("max", np.float64),
        ("first_step", np.int64),
        ("last_step", np.int64),
        ("min_step", np.int64),
        ("max_step", np.int64),
        ("first_value", np.float64),
        ("last_value", np.float64),
        ("first_wall", np.float64),
        ("last_wall", np.float64),
        ("min_wall", np.float64),
        ("max_wall", np.float64),
    ]
)
FIELDS: tuple[str, ...] = tuple(ROW.names or ())
_COLUMNS = ", ".join(FIELDS)

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS summary (
    key_id INTEGER NOT NULL, level INTEGER NOT NULL, bucket INTEGER NOT NULL,
    n INTEGER NOT NULL, nonfinite INTEGER NOT NULL, sum REAL NOT NULL,
    min REAL NOT NULL, max REAL NOT NULL,
    first_step INTEGER NOT NULL, last_step INTEGER NOT NULL,
    min_step INTEGER NOT NULL, max_step INTEGER NOT NULL,
    first_value REAL NOT NULL, last_value REAL NOT NULL,
    first_wall INTEGER NOT NULL, last_wall INTEGER NOT NULL,
    min_wall INTEGER NOT NULL, max_wall INTEGER NOT NULL,
    PRIMARY KEY (key_id, level, bucket)
) WITHOUT ROWID
"""
_UPSERT = (
    f"INSERT OR REPLACE INTO summary (key_id, level, {_COLUMNS}) "
    f"VALUES (?, ?, {', '.join('?' * len(FIELDS))})"
)


def size(level: int) -> int:
    """Steps per bucket at ``level`` (level 0: one step, the raw points)."""
    return 1 if level == 0 else BASE * FANOUT ** (level - 1)


def from_points(steps: np.ndarray, values: np.ndarray, walls: np.ndarray) -> np.ndarray:
    """Raw points as rows of one point each (bucket left 0)."""
    out = np.zeros(len(steps), dtype=ROW)
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out["n"] = 1
    out["nonfinite"] = ~finite
    out["sum"] = np.where(finite, values, 0.0)
    out["min"] = np.where(finite, values, math.inf)
    out["max"] = np.where(finite, values, -math.inf)
    for name in ("first_step", "last_step", "min_step", "max_step"):
        out[name] = steps
    out["first_value"] = values
    out["last_value"] = values
    for name in ("first_wall", "last_wall", "min_wall", "max_wall"):
        out[name] = walls
    return out


def combine(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """One row per run of equal ``ids`` (rows in step order, ids non-decreasing).

    Exact for every field; ties go to the earliest point (the lowest step).
    """
    if not len(rows):
        return np.zeros(0, dtype=ROW)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    out = np.empty(len(starts), dtype=ROW)
    out["bucket"] = ids[starts]
    for name in ("n", "nonfinite", "sum"):
        out[name] = np.add.reduceat(rows[name], starts)
    out["min"] = np.minimum.reduceat(rows["min"], starts)
    out["max"] = np.maximum.reduceat(rows["max"], starts)
    first, last = rows[starts], rows[ends - 1]
    for name in ("first_step", "first_value", "first_wall"):
        out[name] = first[name]
    for name in ("last_step", "last_value", "last_wall"):
        out[name] = last[name]
    counts = ends - starts
    for ext in ("min", "max"):
        hits = np.flatnonzero(rows[ext] == np.repeat(out[ext], counts))
        pos = hits[np.searchsorted(hits, starts)]
        out[f"{ext}_step"] = rows[f"{ext}_step"][pos]
        out[f"{ext}_wall"] = rows[f"{ext}_wall"][pos]
    return out


def bucket_ids(rows: np.ndarray, level: int) -> np.ndarray:
    """The level-``level`` bucket of each row (of any finer level): its first step's."""
    return rows["first_step"] // size(level)


#: The fields of a row but its wall times (which a read by step does not need).
STEP_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if not f.endswith("_wall"))
_STEP_ROW = np.dtype([(f, ROW.fields[f][0]) for f in STEP_FIELDS])  # type: ignore[index]


def fetch_rows(
    conn: sqlite3.Connection, key_id: int, level: int, lo: int, hi: int, *, walls: bool = True
) -> np.ndarray:
    """The stored level-``level`` rows of buckets ``lo..hi``, in order (see :func:`select_rows`
    for ``walls``)."""
    return select_rows(conn, "bucket BETWEEN ? AND ?", (key_id, level, lo, hi), walls=walls)


def select_rows(
    conn: sqlite3.Connection, where: str, params: tuple[int, ...], *, walls: bool = True
) -> np.ndarray:
    """Summary rows ``WHERE key_id = ? AND level = ? AND <where>``, by bucket. Without
    ``walls`` their wall times are left 0: a quarter less to convert, and a read by step needs
    none of them."""
    fields, dtype = (FIELDS, ROW) if walls else (STEP_FIELDS, _STEP_ROW)
    found = np.fromiter(
        conn.execute(
            f"SELECT {', '.join(fields)} FROM summary WHERE key_id = ? AND level = ? "
            f"AND {where} ORDER BY bucket",
            params,
        ),
        dtype=dtype,
    )
    if walls:
        return found
    out = np.zeros(len(found), dtype=ROW)
    for name in STEP_FIELDS:
        out[name] = found[name]
    return out


def store(conn: sqlite3.Connection, key_id: int, level: int, rows: np.ndarray) -> None:
    """Insert or replace ``rows`` at ``level``."""
    if len(rows):
        conn.executemany(_UPSERT, [(key_id, level, *r) for r in rows.tolist()])


# ------------------------------------------------------------------ visibility
def attempt_cutoffs(conn: sqlite3.Connection) -> list[tuple[int, float]]:
    """(attempt, first step a later attempt redid) for every attempt, oldest first."""
    starts = conn.execute("SELECT attempt, start_step FROM attempt ORDER BY attempt").fetchall()
    out: list[tuple[int, float]] = []
    later = math.inf
    for attempt, start in reversed(starts):
        out.append((attempt, later))
        later = min(later, start)
    return out[::-1]


POINT = np.dtype([("step", np.int64), ("value", np.float64), ("wall_ms", np.float64)])


def visible_points(
    conn: sqlite3.Connection,
    key_id: int,
    lo: int,
    hi: int,
    cutoffs: list[tuple[int, float]] | None = None,
) -> np.ndarray:
    """The visible points of ``key_id`` at steps ``lo..hi`` as (step, value, wall_ms), in
    step order. A NULL wall_ms (a step's shared wall time) comes from ``step_wall``."""
    parts = []
    for attempt, cutoff in attempt_cutoffs(conn) if cutoffs is None else cutoffs:
        top = hi if cutoff == math.inf else min(hi, int(cutoff) - 1)
        if top < lo:
            continue
        pts = np.fromiter(
            conn.execute(
                "SELECT s.step, s.value, COALESCE(s.wall_ms, w.wall_ms, 0) FROM scalar AS s "
                "LEFT JOIN step_wall AS w ON w.attempt = s.attempt AND w.step = s.step "
                "WHERE s.key_id = ? AND s.attempt = ? AND s.step BETWEEN ? AND ? "
                "ORDER BY s.step",
                (key_id, attempt, lo, top),
            ),
            dtype=POINT,
        )
        if len(pts):
            parts.append(pts)
    if not parts:
        return np.zeros(0, dtype=POINT)
    pts = np.concatenate(parts)
    if len(parts) > 1:
        pts = pts[np.argsort(pts["step"], kind="stable")]
    # A value SQLite stored as NULL (NaN) reads as None -> NaN already.
    return pts


def point_rows(pts: np.ndarray) -> np.ndarray:
    """Rows of one point each for a :func:`visible_points` array."""
    return from_points(pts["step"], pts["value"], pts["wall_ms"])


# ------------------------------------------------------------------ rebuilding
def rebuild(conn: sqlite3.Connection, key_id: int, lo: int, hi: int) -> None:
    """Recompute, from the visible points, every bucket at every level that covers a step in
    ``lo..hi`` (rows left with no points are deleted)."""
    cutoffs = attempt_cutoffs(conn)
    for level in range(1, LEVELS + 1):
        b_lo, b_hi = lo // size(level), hi // size(level)
        if level == 1:
            below = point_rows(
                visible_points(conn, key_id, b_lo * BASE, (b_hi + 1) * BASE - 1, cutoffs)
            )
        else:
            below = fetch_rows(conn, key_id, level - 1, b_lo * FANOUT, (b_hi + 1) * FANOUT - 1)
        conn.execute(
            "DELETE FROM summary WHERE key_id = ? AND level = ? AND bucket BETWEEN ? AND ?",
            (key_id, level, b_lo, b_hi),
        )
        store(conn, key_id, level, combine(below, bucket_ids(below, level)))


def truncate_from(conn: sqlite3.Connection, start_step: int) -> None:
    """A new attempt redoes the steps from ``start_step``: drop what the summaries hold of
    them (call after the attempt row is inserted, in the same transaction)."""
    key_ids = [k for (k,) in conn.execute("SELECT DISTINCT key_id FROM summary WHERE level = 1")]
    for key_id in key_ids:
        for level in range(1, LEVELS + 1):
            conn.execute(
                "DELETE FROM summary WHERE key_id = ? AND level = ? AND bucket > ?",
                (key_id, level, (start_step - 1) // size(level)),
            )
        if start_step > 0:
            rebuild(conn, key_id, start_step - 1, start_step - 1)


# ------------------------------------------------------------------ the writer's side
#: False only in the benchmark that measures what the summaries cost the writer (bench/
#: summary_cost.py): the journal it writes then has no summaries and must not be kept.
KEEP = True


#: A summary row as a tuple in :data:`FIELDS` order.
Row = tuple


class SummaryKeeper:
    """Keeps a journal's summaries current as its writer inserts points (one per writer).

    Points that extend a key (each step above the key's last) are merged into the open rows
    of every level in memory and upserted: a few rows per key per commit. Anything else (a
    step logged again, or out of order) rebuilds the buckets it touches from the points.
    """

    def __init__(self) -> None:
        # key_id -> open row per level (index level - 1), None where not loaded
        self._open: dict[int, list[Row | None]] = {}
        self._last: dict[int, int] = {}

    def forget(self) -> None:
        """Drop what is cached (after the summaries were changed behind the keeper's back)."""
        self._open.clear()
        self._last.clear()

    def apply(self, conn: sqlite3.Connection, points: np.ndarray) -> None:
        """Fold ``points`` (key_id, step, value, wall_ms), already inserted in this
        transaction, into the summaries."""
        if not len(points) or not KEEP:
            return
        order = np.argsort(points["key_id"], kind="stable")  # arrival order within a key
        points = points[order]
        keys, steps = points["key_id"], points["step"]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(points)]
        # A key whose new steps do not all go up from its last is rebuilt from its points.
        back = np.r_[False, (keys[1:] == keys[:-1]) & (steps[1:] <= steps[:-1])]
        appended = np.ones(len(points), dtype=bool)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            key_id = int(keys[a])
            last = self._last_step(conn, key_id)
            if steps[a] <= last or back[a:b].any():
                appended[a:b] = False
                rebuild(conn, key_id, int(steps[a:b].min()), int(steps[a:b].max()))
                self._open.pop(key_id, None)
                self._last[key_id] = max(last, int(steps[a:b].max()))
        if not appended.all():
            points = points[appended]
        if not len(points):
            return
        row_keys, rows = _level1(points)
        params: list[tuple] = []
        bounds = np.flatnonzero(np.r_[True, row_keys[1:] != row_keys[:-1], True])
        listed = rows.tolist()
        for a, b in itertools.pairwise(bounds.tolist()):
            self._append(conn, int(row_keys[a]), listed[a:b], params)
        conn.executemany(_UPSERT, params)

    def _last_step(self, conn: sqlite3.Connection, key_id: int) -> int:
        last = self._last.get(key_id)
        if last is None:
            row = conn.execute(
                "SELECT last_step FROM summary WHERE key_id = ? AND level = ? "
                "ORDER BY bucket DESC LIMIT 1",
                (key_id, LEVELS),
            ).fetchone()
            last = self._last[key_id] = -(2**62) if row is None else int(row[0])
        return last

    def _append(
        self, conn: sqlite3.Connection, key_id: int, new: list[Row], params: list[tuple]
    ) -> None:
        """Merge a key's new level-1 rows (steps above all it had) into every level."""
        opened = self._open.get(key_id)
        if opened is None:  # first time this writer sees the key: start from what is stored
            opened = self._open[key_id] = [None] * LEVELS
            for level in range(1, LEVELS + 1):
                stored = conn.execute(
                    f"SELECT {_COLUMNS} FROM summary WHERE key_id = ? AND level = ? "
                    "ORDER BY bucket DESC LIMIT 1",
                    (key_id, level),
                ).fetchone()
                opened[level - 1] = stored
        for level in range(1, LEVELS + 1):
            if level > 1:
                new = _regroup(new, size(level))
            held = opened[level - 1]
            merged = new
            if held is not None and held[0] == new[0][0]:
                merged = [merge(held, new[0]), *new[1:]]
            params.extend((key_id, level, *r) for r in merged)
            opened[level - 1] = merged[-1]
        self._last[key_id] = new[-1][7]


def _level1(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level-1 rows of ``points`` (sorted by key, steps going up within a key), straight
    from the point arrays; returns each row's key and the rows."""
    keys, steps = points["key_id"], points["step"]
    values, walls = points["value"], points["wall_ms"]
    ids = steps // BASE
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (ids[1:] != ids[:-1])])
    ends = np.r_[starts[1:], len(points)]
    counts = ends - starts
    finite = np.isfinite(values)
    low = np.where(finite, values, math.inf)
    high = np.where(finite, values, -math.inf)
    out = np.empty(len(starts), dtype=ROW)
    out["bucket"] = ids[starts]
    out["n"] = counts
    out["nonfinite"] = np.add.reduceat(~finite, starts)
    out["sum"] = np.add.reduceat(np.where(finite, values, 0.0), starts)
    out["min"] = np.minimum.reduceat(low, starts)
    out["max"] = np.maximum.reduceat(high, starts)
    last = ends - 1
    out["first_step"], out["last_step"] = steps[starts], steps[last]
    out["first_value"], out["last_value"] = values[starts], values[last]
    out["first_wall"], out["last_wall"] = walls[starts], walls[last]
    for name, arr in (("min", low), ("max", high)):
        hits = np.flatnonzero(arr == np.repeat(out[name], counts))
        pos = hits[np.searchsorted(hits, starts)]
        out[f"{name}_step"] = steps[pos]
        out[f"{name}_wall"] = walls[pos]
    return keys[starts], out


def merge(a: Row, b: Row) -> Row:
    """Two rows of one bucket, ``a`` before ``b``, as one (exact; ties keep ``a``'s point)."""
    (bucket, n, nf, total, lo, hi, first_step, _, lo_step, hi_step, first_value, _,
     first_wall, _, lo_wall, hi_wall) = a  # fmt: skip
    if b[4] < lo:
        lo, lo_step, lo_wall = b[4], b[8], b[14]
    if b[5] > hi:
        hi, hi_step, hi_wall = b[5], b[9], b[15]
    return (bucket, n + b[1], nf + b[2], total + b[3], lo, hi, first_step, b[7], lo_step,
            hi_step, first_value, b[11], first_wall, b[13], lo_wall, hi_wall)  # fmt: skip


def _regroup(rows: list[Row], bucket_size: int) -> list[Row]:
    """Finer rows (in step order) folded into the buckets of ``bucket_size`` steps."""
    out: list[Row] = []
    for row in rows:
        bucket = row[6] // bucket_size
        if out and out[-1][0] == bucket:
            out[-1] = merge(out[-1], row)
        else:
            out.append((bucket, *row[1:]))
    return out


def build_all(conn: sqlite3.Connection, chunk: int = 1 << 18) -> Iterator[int]:
    """Build every key's summaries from its visible points (a journal without them), in
    chunks of the clustered index; yields the points done so far after each chunk (the
    caller may commit there)."""
    keeper = SummaryKeeper()
    cutoffs = attempt_cutoffs(conn)
    done = 0
    for (key_id,) in conn.execute("SELECT id FROM metric_key ORDER BY id").fetchall():
        conn.execute("DELETE FROM summary WHERE key_id = ?", (key_id,))
        keeper.forget()
        for attempt, cutoff in cutoffs:
            after = -(2**62)
            top = 2**62 if cutoff == math.inf else int(cutoff) - 1
            while True:
                pts = np.fromiter(
                    conn.execute(
                        "SELECT s.step, s.value, COALESCE(s.wall_ms, w.wall_ms, 0) "
                        "FROM scalar AS s LEFT JOIN step_wall AS w "
                        "ON w.attempt = s.attempt AND w.step = s.step "
                        "WHERE s.key_id = ? AND s.attempt = ? AND s.step > ? AND s.step <= ? "
                        "ORDER BY s.step LIMIT ?",
                        (key_id, attempt, after, top, chunk),
                    ),
                    dtype=POINT,
                )
                if not len(pts):
                    break
                keyed = np.zeros(len(pts), dtype=POINTS)
                keyed["key_id"] = key_id
                for name in ("step", "value", "wall_ms"):
                    keyed[name] = pts[name]
                keeper.apply(conn, keyed)
                done += len(pts)
                after = int(pts["step"][-1])
                yield done


#: What the writer hands :meth:`SummaryKeeper.apply`.
POINTS = np.dtype(
    [("key_id", np.int64), ("step", np.int64), ("value", np.float64), ("wall_ms", np.float64)]
)
