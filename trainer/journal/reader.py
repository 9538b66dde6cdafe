"""Reading a journal while its trainer writes it: short, fully consumed read transactions.

A :class:`JournalReader` never writes or checkpoints the journal. Every read is one short
transaction whose rows are all fetched before it ends, so no WAL snapshot is pinned between
reads. :meth:`JournalReader.tail` returns only what is new since its last call; its cost grows
with the new rows, not with the run's length (every lookup is a range scan of the clustered
``scalar`` table).

After a resume, an attempt that restarts from step ``s`` supersedes older attempts' points at
steps ``>= s``: they are kept in the file but hidden here unless asked for, so a curve never
zigzags back.

Why over 400 lines: every read of a journal goes through this one door (tail, series, viewport
reads, events, run info, samples), each a short transaction with the same connection handling;
the format it reads is schema.py's.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.journal import db as jdb
from trainer.journal import envelope, summaries
from trainer.journal.envelope import Envelope
from trainer.journal.schema import SUMMARIES_COMPLETE
from trainer.paths import JOURNAL_NAME
from trainer.retry import sqlite_busy, sqlite_transient

#: The page cache of a reader's connection, KiB.
_CACHE_KIB = 256


@dataclass(frozen=True)
class RunInfo:
    """The run row and its newest heartbeat, as stored (status is not yet derived)."""

    id: str
    name: str
    entry: str
    kind: str
    created: float
    config: dict[str, Any]
    status: str
    exit_reason: str | None
    pid: int | None
    pid_started: float | None
    host: str
    attempt: int
    step: int
    max_steps: int | None
    updated: float
    heartbeat_wall: float | None
    heartbeat_step: int | None
    #: Unix time of the current attempt's newest step (None: no step logged yet).
    last_step_wall: float | None = None
    #: The median seconds per step over the attempt's last steps (None: too few to tell).
    median_step_s: float | None = None


#: What :meth:`JournalReader.listing` returns: the run row, each key's newest visible
#: (step, value) and the (kind, wall) of the events asked for, in journal order.
Listing = tuple[RunInfo, dict[str, tuple[int, float]], list[tuple[str, float]]]


@dataclass(frozen=True)
class Series:
    """One key's points, in step order."""

    steps: np.ndarray  # int64
    values: np.ndarray  # float64
    walls: np.ndarray  # float64, unix seconds
    attempts: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.steps)

    @classmethod
    def from_rows(
        cls,
        rows: list[tuple[int, int, float, int | None]],
        created: float,
        conn: sqlite3.Connection | None = None,
    ) -> Series:
        """Build from (attempt, step, value, wall_ms) rows; NULL walls come from step_wall."""
        if not rows:
            return cls.empty()
        return cls._from_points(np.fromiter(rows, dtype=_ROW, count=len(rows)), created, conn)

    @classmethod
    def _from_points(
        cls,
        points: np.ndarray,
        created: float,
        conn: sqlite3.Connection | None,
        step_walls: _StepWalls | None = None,
    ) -> Series:
        """Build from a :data:`_ROW` array (consumed: its walls are filled in place)."""
        if conn is not None:
            _fill_step_walls(conn, points, step_walls)
        # Own, contiguous arrays: a column view would keep all of ``points`` alive.
        return cls(
            steps=np.ascontiguousarray(points["step"]),
            values=np.ascontiguousarray(points["value"]),
            walls=created + points["wall_ms"] / 1000.0,
            attempts=points["attempt"].astype(np.int32),
        )

    @classmethod
    def empty(cls) -> Series:
        return cls(
            np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64),
            np.empty(0, np.int32),
        )  # fmt: skip


@dataclass(frozen=True)
class KeyExtent:
    """How many visible points a key has, where they lie, and their finite value range."""

    count: int
    nonfinite: int
    x_first: float
    x_last: float
    y_min: float  # inf when no value is finite
    y_max: float
    last_step: int


def x_of(row: np.void, which: str, axis: str, shift: float) -> float:
    """The x of a summary row's ``which`` point ("first", "last", "min", "max")."""
    if axis == "step":
        return float(row[f"{which}_step"])
    return shift + float(row[f"{which}_wall"]) / 1000.0


@dataclass(frozen=True)
class EventRow:
    id: int
    wall: float
    attempt: int
    step: int | None
    kind: str
    message: str
    data: Any


@dataclass(frozen=True)
class SampleRow:
    id: int
    wall: float
    attempt: int
    cpu_percent: float | None
    rss: int | None
    gpus: list[dict[str, Any]] | None


#: A key with more points than this is not read into memory when a run is first read: its
#: points so far are its history (``TailBatch.history``), drawn by viewport; the follower
#: and the charts both use it.
HISTORY_LIMIT = 20_000


@dataclass(frozen=True)
class History:
    """A long key's points before those a tail read returns: drawn by viewport."""

    count: int  # visible points before ``tail_start``
    first_step: int
    first_wall: float  # unix s
    last_wall: float  # unix s
    tail_start: int  # the first step the tail returns
    resume_from: tuple[int, int]  # the reader's position: (attempt, step) before tail_start


def _history(conn: sqlite3.Connection, key_id: int, limit: int, created: float) -> History | None:
    """A key with more than ``limit`` visible points: all of them, as its history (None: it
    has not that many). A few rows of the coarsest summaries."""
    top = summaries.fetch_rows(conn, key_id, summaries.LEVELS, -(2**62), 2**62)
    total = int(top["n"].sum()) if len(top) else 0
    if total <= limit:
        return None
    last_step = int(top["last_step"][-1])
    tail_start = last_step + 1
    attempt = max(a for a, cutoff in summaries.attempt_cutoffs(conn) if cutoff > last_step)
    return History(
        count=total,
        first_step=int(top["first_step"][0]),
        first_wall=created + float(top["first_wall"][0]) / 1000.0,
        last_wall=created + float(top["last_wall"][-1]) / 1000.0,
        tail_start=tail_start,
        resume_from=(attempt, last_step),
    )


@dataclass
class TailBatch:
    """What is new in a journal since the previous :meth:`JournalReader.tail`.

    Apply ``new_attempts`` first (drop buffered points at steps >= each start step), then
    append ``points``: the steps stay in order.
    """

    run: RunInfo
    points: dict[str, Series] = field(default_factory=dict)
    new_attempts: list[tuple[int, int]] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    samples: list[SampleRow] = field(default_factory=list)
    #: Keys read only from their newest points on: what came before (see tail()).
    history: dict[str, History] = field(default_factory=dict)
    #: False for a journal without complete summaries (an older schema): it is read from its
    #: points until upgraded (trainer.upgrade).
    summarized: bool = True

    @property
    def n_points(self) -> int:
        return sum(len(s) for s in self.points.values())


class JournalReader:
    """Read-only access to one run's journal. Accepts the run folder or the journal file."""

    def __init__(self, path: Path, *, frozen: bool = False) -> None:
        """``frozen``: read the journal as a frozen file (see :func:`jdb.connect_frozen`;
        only for one quick read of a journal found idle, checked again after)."""
        path = Path(path)
        self.path = path / JOURNAL_NAME if path.is_dir() else path
        connect = jdb.connect_frozen if frozen else jdb.connect_reader
        self._conn: sqlite3.Connection | None = connect(self.path)
        # A reader's reads are range scans and a few B-tree paths: SQLite's default page
        # cache (2 MB, kept for the life of the connection) only holds an app that follows
        # many runs' memory, not their speed.
        self._conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        self._keys: dict[int, str] = {}
        self._key_pos: dict[int, tuple[int, int]] = {}
        self._start_steps: dict[int, int] = {}
        self._last_event = 0
        self._last_sample = 0
        self._created: float | None = None
        self._complete = False  # the summaries are complete (once seen, stays so)

    # ---------------------------------------------------------------- plumbing
    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One short read transaction: a consistent snapshot, released on exit."""
        if self._conn is None:
            raise ValueError("the reader is closed")
        conn = self._conn
        try:
            # Taking the snapshot is the one step that can meet "database is locked"; once
            # taken, the transaction's reads never wait. So only that step is tried again.
            sqlite_transient(f"reading the journal {self.path}")(_begin_snapshot, conn)
            yield conn
        except sqlite3.DatabaseError as exc:
            if sqlite_busy(exc):
                raise jdb.locked(self.path, exc) from exc
            raise jdb.damaged(self.path, exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def data_version(self) -> int:
        """SQLite's data_version on this reader's connection: it changes when another
        connection commits, and reading it reads no table (a cheap "anything new?")."""
        if self._conn is None:
            raise ValueError("the reader is closed")
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    # ---------------------------------------------------------------- whole reads
    def run_info(self) -> RunInfo:
        with self._read() as conn:
            return self._run_info(conn)

    def keys(self) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM metric_key ORDER BY name")]

    def series(self, key: str, *, include_superseded: bool = False) -> Series:
        """A key's full series as numpy arrays (superseded points hidden unless asked for)."""
        with self._read() as conn:
            created = self._created_at(conn)
            row = conn.execute("SELECT id FROM metric_key WHERE name = ?", (key,)).fetchone()
            if row is None:
                return Series.empty()
            points = _fetch_points(
                conn,
                "SELECT attempt, step, value, wall_ms FROM scalar WHERE key_id = ? "
                "ORDER BY attempt, step",
                (row[0],),
            )
            cutoffs = {} if include_superseded else _cutoffs(self._attempt_starts(conn))
        if cutoffs:
            points = points[_visible(points, cutoffs)]
        if not len(points):
            return Series.empty()
        return Series._from_points(points, created, conn)

    def envelope(
        self,
        key: str,
        x0: float,
        x1: float,
        width: int,
        *,
        axis: str = "step",
        exact: bool = True,
    ) -> Envelope:
        """What a chart ``width`` pixels wide draws of ``key`` over ``[x0, x1]``: each pixel
        column's first, last, lowest and highest point, exact (see
        :mod:`trainer.journal.envelope`), read from the summaries in one short transaction."""
        with self._read() as conn:
            created = self._created_at(conn)
            key_id = self._key_id(conn, key)
            if key_id is None:
                return envelope.empty(x0, x1, max(int(width), 1))
            return envelope.read_envelope(
                conn, key_id, x0, x1, width, axis=axis, created=created,
                summarized=self._summarized(conn), exact=exact,
            )  # fmt: skip

    def extent(self, key: str, *, axis: str = "step") -> KeyExtent | None:
        """``key``'s visible points: how many, and the x of the first and last (None: none).
        A few rows of the coarsest summaries; journals without them count their points."""
        with self._read() as conn:
            created = self._created_at(conn)
            key_id = self._key_id(conn, key)
            if key_id is None:
                return None
            if self._summarized(conn):
                rows = summaries.fetch_rows(conn, key_id, summaries.LEVELS, -(2**62), 2**62)
            else:
                pts = summaries.visible_points(conn, key_id, -(2**62), 2**62)
                rows = summaries.combine(summaries.point_rows(pts), np.zeros(len(pts), np.int64))
        if not len(rows):
            return None
        shift = created if axis == "wall" else 0.0
        first, last = rows[0], rows[-1]
        return KeyExtent(
            count=int(rows["n"].sum()),
            nonfinite=int(rows["nonfinite"].sum()),
            x_first=x_of(first, "first", axis, shift),
            x_last=x_of(last, "last", axis, shift),
            y_min=float(rows["min"].min()),
            y_max=float(rows["max"].max()),
            last_step=int(last["last_step"]),
        )

    def events(self, since_id: int = 0) -> list[EventRow]:
        with self._read() as conn:
            return self._events(conn, since_id)

    def samples(self, since_id: int = 0) -> list[SampleRow]:
        with self._read() as conn:
            return self._samples(conn, since_id)

    def latest(self) -> dict[str, tuple[int, float]]:
        """Each key's newest visible (step, value)."""
        with self._read() as conn:
            return self._latest(conn)

    def listing(self, event_kinds: Iterable[str] = (), *, with_latest: bool = True) -> Listing:
        """What a runs listing shows, in one snapshot (a listing opens thousands of journals,
        so one read transaction, not three): the run row, each key's newest visible (step,
        value) (none without ``with_latest``) and the (kind, wall) of the events of
        ``event_kinds``, in journal order."""
        kinds = sorted(set(event_kinds))
        with self._read() as conn:
            info = self._run_info(conn)
            latest = self._latest(conn) if with_latest else {}
            events: list[tuple[str, float]] = []
            if kinds:
                events = conn.execute(
                    f"SELECT kind, wall FROM event WHERE kind IN ({', '.join('?' * len(kinds))}) "
                    "ORDER BY id",
                    kinds,
                ).fetchall()
        return info, latest, events

    def _latest(self, conn: sqlite3.Connection) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        cutoffs = _cutoffs(self._attempt_starts(conn))
        for key_id, name in conn.execute("SELECT id, name FROM metric_key").fetchall():
            row = _newest_point(conn, key_id, cutoffs)
            if row is not None:
                out[name] = row
        return out

    # ---------------------------------------------------------------- incremental
    def tail(self, history_limit: int | None = None) -> TailBatch:
        """Everything committed since the previous call (the first call returns everything).

        ``history_limit``: a key met for the first time with more visible points than this
        returns none of them: they are its history (:attr:`TailBatch.history`), to be read
        by viewport (:meth:`envelope`); later calls return its new points.
        """
        with self._read() as conn:
            created = self._created_at(conn)
            batch = TailBatch(run=self._run_info(conn), summarized=self._summarized(conn))
            for attempt, start in conn.execute(
                "SELECT attempt, start_step FROM attempt WHERE attempt > ? ORDER BY attempt",
                (max(self._start_steps, default=0),),
            ).fetchall():
                if self._start_steps:
                    batch.new_attempts.append((attempt, start))
                self._start_steps[attempt] = start
            cutoffs = _cutoffs(self._start_steps)
            step_walls = _StepWalls(conn)
            for key_id, name in conn.execute(
                "SELECT id, name FROM metric_key WHERE id > ? ORDER BY id",
                (max(self._keys, default=0),),
            ).fetchall():
                self._keys[key_id] = name
                self._key_pos[key_id] = (0, -(2**62))
                if history_limit is not None and self._summarized(conn):
                    history = _history(conn, key_id, history_limit, created)
                    if history is not None:
                        batch.history[name] = history
                        self._key_pos[key_id] = history.resume_from
            for key_id, (attempt, step) in self._key_pos.items():
                points = _fetch_points(
                    conn,
                    "SELECT attempt, step, value, wall_ms FROM scalar "
                    "WHERE key_id = ? AND (attempt, step) > (?, ?) ORDER BY attempt, step",
                    (key_id, attempt, step),
                )
                if not len(points):
                    continue
                last = points[-1]
                self._key_pos[key_id] = (int(last["attempt"]), int(last["step"]))
                if cutoffs:
                    points = points[_visible(points, cutoffs)]
                if len(points):
                    batch.points[self._keys[key_id]] = Series._from_points(
                        points, created, conn, step_walls
                    )
            batch.events = self._events(conn, self._last_event)
            if batch.events:
                self._last_event = batch.events[-1].id
            batch.samples = self._samples(conn, self._last_sample)
            if batch.samples:
                self._last_sample = batch.samples[-1].id
        return batch

    # ---------------------------------------------------------------- helpers
    def _key_id(self, conn: sqlite3.Connection, key: str) -> int | None:
        row = conn.execute("SELECT id FROM metric_key WHERE name = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def _summarized(self, conn: sqlite3.Connection) -> bool:
        """True once the journal's summaries hold every point (not so for a journal of schema
        v1, or one whose migration is under way)."""
        if self._complete:
            return True
        row = conn.execute("SELECT value FROM meta WHERE key = 'summaries'").fetchone()
        self._complete = row is not None and row[0] == SUMMARIES_COMPLETE
        return self._complete

    def _created_at(self, conn: sqlite3.Connection) -> float:
        if self._created is None:
            row = conn.execute("SELECT created FROM run").fetchone()
            self._created = float(row[0]) if row else 0.0
        return self._created

    def _attempt_starts(self, conn: sqlite3.Connection) -> dict[int, int]:
        return dict(conn.execute("SELECT attempt, start_step FROM attempt").fetchall())

    def _run_info(self, conn: sqlite3.Connection) -> RunInfo:
        row = conn.execute(
            "SELECT id, name, entry, kind, created, config, status, exit_reason, pid, "
            "pid_started, host, attempt, step, max_steps, updated FROM run"
        ).fetchone()
        if row is None:
            raise jdb.damaged(self.path, ValueError("no run row"))
        hb = conn.execute(
            "SELECT wall, step FROM heartbeat ORDER BY attempt DESC LIMIT 1"
        ).fetchone()
        (rid, name, entry, kind, created, config, status, reason, pid, started, host,
         attempt, step, max_steps, updated) = row  # fmt: skip
        last_wall, median = _step_pace(conn, attempt, created)
        return RunInfo(
            id=rid, name=name, entry=entry, kind=kind, created=created,
            config=json.loads(config), status=status, exit_reason=reason, pid=pid,
            pid_started=started, host=host, attempt=attempt, step=step, max_steps=max_steps,
            updated=updated, heartbeat_wall=hb[0] if hb else None,
            heartbeat_step=hb[1] if hb else None, last_step_wall=last_wall,
            median_step_s=median,
        )  # fmt: skip

    @staticmethod
    def _events(conn: sqlite3.Connection, since_id: int) -> list[EventRow]:
        return [
            EventRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None)
            for r in conn.execute(
                "SELECT id, wall, attempt, step, kind, message, data FROM event "
                "WHERE id > ? ORDER BY id",
                (since_id,),
            ).fetchall()
        ]

    @staticmethod
    def _samples(conn: sqlite3.Connection, since_id: int) -> list[SampleRow]:
        return [
            SampleRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None)
            for r in conn.execute(
                "SELECT id, wall, attempt, cpu_percent, rss, gpus FROM system_sample "
                "WHERE id > ? ORDER BY id",
                (since_id,),
            ).fetchall()
        ]


def _begin_snapshot(conn: sqlite3.Connection) -> None:
    """BEGIN a read transaction and take its snapshot now (a deferred BEGIN takes none)."""
    conn.execute("BEGIN")
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except BaseException:
        conn.execute("ROLLBACK")
        raise


#: A point as read: NULL (None) values and wall times become NaN.
_ROW = np.dtype(
    [("attempt", np.int64), ("step", np.int64), ("value", np.float64), ("wall_ms", np.float64)]
)


def _fetch_points(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> np.ndarray:
    """The (attempt, step, value, wall_ms) rows of ``sql`` as a :data:`_ROW` array.

    Filled straight from the cursor: a first read of a long run returns millions of rows, and
    a list of tuples of them would take five times the memory (and longer to build).
    """
    return np.fromiter(conn.execute(sql, params), dtype=_ROW)


def _visible(points: np.ndarray, cutoffs: dict[int, float]) -> np.ndarray:
    """A mask of the points that no later attempt superseded (step < its attempt's cutoff)."""
    limit = np.full(len(points), math.inf)
    attempts = points["attempt"]
    for attempt, cutoff in cutoffs.items():
        limit[attempts == attempt] = cutoff
    mask: np.ndarray = points["step"] < limit
    return mask


class _StepWalls:
    """step_wall rows of one read transaction, fetched once for all the keys that need them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # attempt -> (first step, last step, steps, wall_ms) of the rows fetched
        self._loaded: dict[int, tuple[int, int, np.ndarray, np.ndarray]] = {}

    def lookup(self, attempt: int, steps: np.ndarray) -> np.ndarray:
        """The wall_ms of ``steps`` (sorted) of ``attempt``; 0 where step_wall has none."""
        lo, hi = int(steps[0]), int(steps[-1])
        have = self._loaded.get(attempt)
        if have is None or lo < have[0] or hi > have[1]:
            if have is not None:
                lo, hi = min(lo, have[0]), max(hi, have[1])
            # Equality on attempt lets the step range use the primary key (a range on both
            # would scan every step of the attempt).
            table = np.fromiter(
                self._conn.execute(
                    "SELECT step, wall_ms FROM step_wall WHERE attempt = ? "
                    "AND step BETWEEN ? AND ? ORDER BY step",
                    (attempt, lo, hi),
                ),
                dtype=np.dtype([("step", np.int64), ("wall_ms", np.int64)]),
            )
            have = (lo, hi, np.ascontiguousarray(table["step"]), table["wall_ms"].copy())
            self._loaded[attempt] = have
        _, _, known, walls = have
        if not len(known):
            return np.zeros(len(steps), dtype=np.int64)
        idx = np.minimum(np.searchsorted(known, steps), len(known) - 1)
        return np.where(known[idx] == steps, walls[idx], 0)


def _fill_step_walls(
    conn: sqlite3.Connection, points: np.ndarray, step_walls: _StepWalls | None = None
) -> None:
    """Fill NaN wall_ms of a :data:`_ROW` array in place from step_wall: one range scan per
    attempt (shared by the keys of one read through ``step_walls``), then a search."""
    walls = points["wall_ms"]  # a view: assigning to it fills ``points``
    missing = np.isnan(walls)
    if not missing.any():
        return
    step_walls = step_walls or _StepWalls(conn)
    attempts = points["attempt"][missing]
    steps = points["step"][missing]
    filled = np.empty(len(steps), dtype=np.float64)
    for attempt in np.unique(attempts).tolist():
        in_attempt = attempts == attempt
        filled[in_attempt] = step_walls.lookup(attempt, steps[in_attempt])
    walls[missing] = filled


def _cutoffs(start_steps: dict[int, int]) -> dict[int, float]:
    """For each attempt, the first step a later attempt redid (its points from there are hidden)."""
    out: dict[int, float] = {}
    later = math.inf
    for attempt in sorted(start_steps, reverse=True):
        out[attempt] = later
        later = min(later, start_steps[attempt])
    return {a: c for a, c in out.items() if c != math.inf}


def _newest_point(
    conn: sqlite3.Connection, key_id: int, cutoffs: dict[int, float]
) -> tuple[int, float] | None:
    """The key's newest visible (step, value): a few seeks of the primary key, whatever the
    run's length (walk the attempts that have points from the newest down, one seek each)."""
    below = 2**62  # the next attempt looked at is the newest one under this
    while True:
        found = conn.execute(
            "SELECT attempt FROM scalar WHERE key_id = ? AND attempt < ? "
            "ORDER BY attempt DESC LIMIT 1",
            (key_id, below),
        ).fetchone()
        if found is None:
            return None
        attempt = found[0]
        row = conn.execute(
            "SELECT step, value FROM scalar WHERE key_id = ? AND attempt = ? AND step < ? "
            "ORDER BY step DESC LIMIT 1",
            (key_id, attempt, cutoffs.get(attempt, 2**62)),
        ).fetchone()
        if row is not None:
            return row[0], row[1]
        below = attempt


#: Steps looked at for the median step time (recent pace, not the whole run's).
PACE_WINDOW = 32


def _step_pace(
    conn: sqlite3.Connection, attempt: int, created: float
) -> tuple[float | None, float | None]:
    """The wall time of the attempt's newest step and its recent median seconds per step."""
    rows = conn.execute(
        "SELECT step, wall_ms FROM step_wall WHERE attempt = ? ORDER BY step DESC LIMIT ?",
        (attempt, PACE_WINDOW + 1),
    ).fetchall()
    if len(rows) < 4:
        # Steps that log one key keep their own wall time (no step_wall row): take the first
        # key's points, a range of its primary key, as cheap as the query above.
        rows = (
            conn.execute(
                "SELECT step, wall_ms FROM scalar WHERE key_id = (SELECT MIN(id) FROM metric_key) "
                "AND attempt = ? AND wall_ms IS NOT NULL ORDER BY step DESC LIMIT ?",
                (attempt, PACE_WINDOW + 1),
            ).fetchall()
            or rows
        )
    if not rows:
        return None, None
    last = created + rows[0][1] / 1000.0
    paces = sorted(
        (newer[1] - older[1]) / 1000.0 / (newer[0] - older[0])
        for newer, older in itertools.pairwise(rows)
        if newer[0] > older[0]
    )
    if len(paces) < 3:
        return last, None
    return last, paces[len(paces) // 2]
