"""The journal's one writer: ``log()`` only appends to a queue; one thread commits batches.

The hot path (``log_scalars``) takes no lock and does no I/O: it appends one tuple to a
``collections.deque`` (atomic under the GIL). The writer thread wakes at least every
``flush_interval`` seconds (50 ms), or sooner when the queue passes ``max_batch`` items, and
commits everything queued in one transaction with ``executemany`` on the raw connection
(peewee's ``insert_many`` measured about 10x slower). Other operations (events, status,
heartbeats) travel in the same queue, so they commit in the order they were made.

Heartbeats ride along (:meth:`JournalWriter.beat_with_points`, a live run's): a commit that
holds points also writes the heartbeat row, so the heartbeat thread need not beat while points
flow, and a watching app (one read per commit) reads about half as often. A system sample may
likewise wait a little for a commit of points to join (``system_sample(wait=...)``).

Back-pressure: at most ``max_queued`` points (default 100,000, ``$TRAINDESK_LOG_BUFFER``) wait
in the queue or in the writer's batch being committed (about 7 MB with ten keys per call). A
``log_scalars`` that finds the buffer full waits until half of it is committed (the training
loop slows; nothing is dropped), says so in the structured log and journals a ``throttled``
event at most every 10 s. Events, status and heartbeats are never held back.

Why over 400 lines: the one writer thread and what must run on it (batching, back-pressure, the
summaries kept on commit, retries of a locked file, a full disk) belong together, so that the
single-writer rule reads in one file; ``annotate`` for supervisors follows the same rules.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import peewee as pw

from trainer import settings
from trainer.errors import DiskFullError, JournalError, TrainDeskError, disk_full
from trainer.journal import db as jdb
from trainer.journal import listing_file, summaries
from trainer.journal.schema import SUMMARIES_COMPLETE
from trainer.retry import sqlite_busy, sqlite_transient

log = logging.getLogger(__name__)

_SCALARS = 0
_OP = 1
_SYNC = 2
_LAZY = 3  # an operation that may wait (until its due time) for other work to commit with

#: Points that may wait in the queue before ``log_scalars`` waits for the writer.
DEFAULT_MAX_QUEUED = 100_000
ENV_LOG_BUFFER = settings.LOG_BUFFER.name
#: Seconds between two ``throttled`` reports (structured log and journal event).
THROTTLE_REPORT_S = 10.0
#: Seconds between two progress lines while close() writes what is left.
CLOSE_PROGRESS_S = 2.0

_INSERT_SCALAR = (
    "INSERT OR REPLACE INTO scalar (key_id, attempt, step, value, wall_ms) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_STEP_WALL = "INSERT OR IGNORE INTO step_wall (attempt, step, wall_ms) VALUES (?, ?, ?)"
# sqlite3's executemany gives up the GIL around every row, and the training thread then keeps
# the writer waiting for it; one statement per CHUNK rows takes it back once per chunk.
_CHUNK = 4000  # x 5 parameters: under SQLite's limit of 32,766
_INSERT_SCALAR_CHUNK = (
    "INSERT OR REPLACE INTO scalar (key_id, attempt, step, value, wall_ms) VALUES "
    + ", ".join(["(?, ?, ?, ?, ?)"] * _CHUNK)
)
#: A point logged within this many ms of its step's first point shares the step's wall time.
SHARED_WALL_MS = 100


def max_queued_default() -> int:
    """``$TRAINDESK_LOG_BUFFER`` (points, at least 1,000), else :data:`DEFAULT_MAX_QUEUED`."""
    try:
        value = int(settings.LOG_BUFFER.raw() or DEFAULT_MAX_QUEUED)
    except ValueError:
        return DEFAULT_MAX_QUEUED
    return max(1000, value)


class _PointQueue(deque[tuple[Any, ...]]):
    """The writer's FIFO; it counts the points taken out (writer thread only) so that the hot
    path can tell how many wait: ``added - taken``, each counter written by one side."""

    taken = 0

    def popleft(self) -> tuple[Any, ...]:
        item = super().popleft()
        if item[0] == _SCALARS:
            self.taken += len(item[3])
        return item


def _is_disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "disk i/o error" in text or "file too large" in text


class JournalWriter:
    """Owns a journal's write connection and the background thread that batches commits.

    Create one with :meth:`create` (a new run) or :meth:`open` (resume). Call :meth:`close`
    (or :meth:`flush`) before exit; both wait until everything queued is committed.
    """

    def __init__(
        self,
        path: Path,
        database: pw.SqliteDatabase,
        *,
        flush_interval: float = 0.05,
        max_batch: int = 20_000,
        max_queued: int | None = None,
    ) -> None:
        self.path = path
        self._db = database
        self._conn: sqlite3.Connection = database.connection()
        self._queue = _PointQueue()
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        #: The most points that wait in the queue; log_scalars waits beyond it.
        self.max_queued = max_queued if max_queued is not None else max_queued_default()
        self._added = 0  # points queued (written by the logging thread only)
        self._committed = 0  # points taken and committed (written by the writer thread only)
        #: Seconds log_scalars has waited for the writer, in total (back-pressure).
        self.throttled_s = 0.0
        self._throttle_reported = 0.0  # throttled_s when last reported
        self._throttle_report_at = 0.0  # monotonic time of that report
        self._space = threading.Event()  # set by the writer after each batch
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._warned: set[str | tuple[str, str]] = set()
        self._last_step = -(2**62)
        self._last_wall = 0
        self._step_wall_stored = False
        self._summaries = summaries.SummaryKeeper()
        self._run_step: Callable[[], int] | None = None  # set by beat_with_points
        self._beat_step = -(2**62)  # the highest step a heartbeat carried (writer thread)
        #: ``time.monotonic()`` of the newest commit of points that wrote the heartbeat too
        #: (-inf: none yet); written by the writer thread only.
        self.points_beat = float("-inf")
        self._key_ids: dict[str, int] = dict(
            self._conn.execute("SELECT name, id FROM metric_key").fetchall()
        )
        row = self._conn.execute("SELECT created, attempt FROM run").fetchone()
        self.created: float = row[0] if row else time.time()
        self.attempt: int = row[1] if row else 1
        # A daemon: close() joins it, and a script that ends without closing the run still
        # exits (its run then reads "crashed", as after a kill).
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        path: Path,
        *,
        run_id: str,
        name: str,
        entry: str,
        kind: str,
        config: Mapping[str, Any],
        max_steps: int | None = None,
        created: float | None = None,
        **kwargs: Any,
    ) -> JournalWriter:
        """Create a new journal with its run row, attempt 1, status "starting" (``created``:
        the run's start time, default now; an import gives its first point's)."""
        now = time.time() if created is None else created

        def init(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('run_id', ?), ('created_by', ?)",
                (run_id, f"traindesk {_version()}"),
            )
            conn.execute(
                "INSERT INTO run (id, name, entry, kind, created, config, status, pid, "
                "pid_started, host, attempt, step, max_steps, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, 'starting', ?, ?, ?, 1, 0, ?, ?)",
                (run_id, name, entry, kind, now, json.dumps(dict(config)), os.getpid(),
                 _process_start_time(), socket.gethostname(), max_steps, now),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO attempt (attempt, start_step, started, pid, host) "
                "VALUES (1, 0, ?, ?, ?)",
                (now, os.getpid(), socket.gethostname()),
            )

        jdb.create_journal(path, init)
        database = jdb.open_writer(path)
        return cls(path, database, **kwargs)

    @classmethod
    def open_next_attempt(cls, path: Path, *, resume_step: int, **kwargs: Any) -> JournalWriter:
        """Open an existing journal to resume it as a new attempt after ``resume_step``.

        ``resume_step`` is the step of the checkpoint the attempt starts from (0: from
        scratch); older attempts' points after it are superseded.
        """
        start_step = resume_step + 1
        database = jdb.open_writer(path, create=False)
        conn = database.connection()
        now = time.time()
        try:
            with database.atomic("IMMEDIATE"):
                (attempt,) = conn.execute(
                    "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempt"
                ).fetchone()
                conn.execute(
                    "INSERT INTO attempt (attempt, start_step, started, pid, host) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (attempt, start_step, now, os.getpid(), socket.gethostname()),
                )
                if _summaries_complete(conn):
                    summaries.truncate_from(conn, start_step)
                conn.execute(
                    "UPDATE run SET attempt = ?, status = 'starting', exit_reason = NULL, "
                    "pid = ?, pid_started = ?, host = ?, step = ?, updated = ?",
                    (
                        attempt,
                        os.getpid(),
                        _process_start_time(),
                        socket.gethostname(),
                        resume_step,
                        now,
                    ),
                )
        except (sqlite3.DatabaseError, pw.DatabaseError) as exc:
            database.close()
            if _is_disk_full(exc):
                raise DiskFullError(
                    f"cannot resume {path.parent.name}: {exc}; free some disk space"
                ) from exc
            raise JournalError(f"cannot resume {path.parent.name}: {exc}") from exc
        return cls(path, database, **kwargs)

    # ---------------------------------------------------------------- hot path
    def log_scalars(
        self, values: Mapping[str, float], step: int, wall: float | None = None
    ) -> dict[str, float]:
        """Queue a copy of one step's scalars (``wall``: when they were measured, default now)
        and return the copy. Never blocks on disk; waits while :attr:`max_queued` points are
        queued (back-pressure, never loss); raises if the writer has failed."""
        if self._error is not None:
            raise self.failure()
        values = {**values}  # a copy: the caller may reuse (and change) its dict next step
        self._queue.append((_SCALARS, step, time.time() if wall is None else wall, values))
        self._added += len(values)
        if len(self._queue) >= self._max_batch and not self._wake.is_set():
            self._wake.set()
        if self._added - self._committed >= self.max_queued:
            self._throttle()
        return values

    @property
    def queued_points(self) -> int:
        """Points logged but not yet committed."""
        return max(0, self._added - self._committed)

    def _throttle(self) -> None:
        """Wait until at most half of the buffer's points are queued or being written (or the
        writer failed). Points the writer has taken count until committed, so its batches are
        bounded by the buffer too."""
        started = time.monotonic()
        low = self.max_queued // 2
        while True:
            self._space.clear()
            if self._added - self._committed <= low:
                break
            if self._error is not None:
                raise self.failure()
            if not self._thread.is_alive():
                raise JournalError(f"the journal writer of {self.path} has stopped")
            self._wake.set()
            self._space.wait(0.05)
        now = time.monotonic()
        self.throttled_s += now - started
        if now - self._throttle_report_at >= THROTTLE_REPORT_S:
            self._report_throttling(now)

    def _report_throttling(self, now: float) -> None:
        waited = self.throttled_s - self._throttle_reported
        self._throttle_reported, self._throttle_report_at = self.throttled_s, now
        message = (
            f"logging is throttling training: the journal writer is behind, log() waited "
            f"{waited:.1f} s (in all {self.throttled_s:.1f} s) for room in its buffer of "
            f"{self.max_queued:,} points; nothing is dropped"
        )
        fields = {"throttled_s": round(self.throttled_s, 3), "waited_s": round(waited, 3),
                  "max_queued": self.max_queued}  # fmt: skip
        log.warning(message, extra={"fields": fields})
        self.event("throttled", message, data=fields)

    # ---------------------------------------------------------------- other records
    def event(
        self, kind: str, message: str = "", *, step: int | None = None, data: Any = None
    ) -> None:
        """Queue an event (started, checkpoint, paused, error, ...)."""
        payload = None if data is None else json.dumps(data)
        wall = time.time()
        self._op(
            lambda c: c.execute(
                "INSERT INTO event (wall, attempt, step, kind, message, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (wall, self.attempt, step, kind, message, payload),
            )
        )

    def set_status(
        self, status: str, *, exit_reason: str | None = None, step: int | None = None
    ) -> None:
        """Queue an update of the run's status (and step)."""
        now = time.time()
        self._op(
            lambda c: c.execute(
                "UPDATE run SET status = ?, exit_reason = ?, step = COALESCE(?, step), updated = ?",
                (status, exit_reason, step, now),
            )
        )

    def set_fields(self, **fields: Any) -> None:
        """Queue an update of other columns of the run row (max_steps, config, ...)."""
        cols = ", ".join(f"{k} = ?" for k in fields)
        values = tuple(json.dumps(v) if k == "config" else v for k, v in fields.items())
        self._op(lambda c: c.execute(f"UPDATE run SET {cols}", values))

    def heartbeat(self, step: int) -> None:
        """Queue this attempt's heartbeat (the newest replaces the last)."""
        wall = time.time()
        pid = os.getpid()
        self._op(lambda c: self._write_beat(c, wall, step, pid))

    def beat_with_points(self, run_step: Callable[[], int] | None) -> None:
        """From now on, every commit that holds points also writes the heartbeat (None: no
        more), with the time of the commit and ``run_step()`` (the run's current step, read
        on the writer thread as the batch starts; at least the highest step committed).

        A live run's heartbeat thread then beats only when no points were committed for a
        while (see :attr:`points_beat`): fewer commits, so fewer reads for whoever follows
        the journal. An import writes points but has no heartbeat: it does not call this.
        """
        self._run_step = run_step

    def system_sample(
        self,
        cpu_percent: float | None,
        rss: int | None,
        gpus: list[dict[str, Any]] | None,
        *,
        wait: float = 0.0,
    ) -> None:
        """Queue one system sample; alone in the queue, it waits up to ``wait`` seconds for
        something else (points, a heartbeat) to commit with, which saves a commit."""
        wall = time.time()
        payload = json.dumps(gpus) if gpus else None

        def write(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO system_sample (wall, attempt, cpu_percent, rss, gpus) "
                "VALUES (?, ?, ?, ?, ?)",
                (wall, self.attempt, cpu_percent, rss, payload),
            )

        if wait > 0:
            if self._error is not None:
                raise self.failure()
            self._queue.append((_LAZY, write, time.monotonic() + wait))
        else:
            self._op(write)

    def _op(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        if self._error is not None:
            raise self.failure()
        self._queue.append((_OP, fn))

    def _write_beat(self, conn: sqlite3.Connection, wall: float, step: int, pid: int) -> None:
        """Upsert the heartbeat row (writer thread)."""
        conn.execute(
            "INSERT OR REPLACE INTO heartbeat (attempt, wall, step, pid) VALUES (?, ?, ?, ?)",
            (self.attempt, wall, step, pid),
        )
        conn.execute("UPDATE run SET step = MAX(step, ?)", (step,))
        self._beat_step = max(self._beat_step, step)

    # ---------------------------------------------------------------- flushing
    @property
    def writing(self) -> bool:
        """True while the writer thread runs (the database must stay open)."""
        return self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the writer (disk full, ...), or None."""
        return self._error

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed (or the writer failed)."""
        if self._error is None and self._thread.is_alive():
            # The queue is FIFO: once the writer reaches this marker, all before it is committed.
            done = threading.Event()
            self._queue.append((_SYNC, done))
            self._wake.set()
            deadline = time.monotonic() + timeout
            while not done.wait(0.05):
                if self._error is not None or not self._thread.is_alive():
                    break
                if time.monotonic() > deadline:
                    raise JournalError(f"the journal writer did not flush within {timeout:.0f} s")
        if self._error is not None:
            raise self.failure()

    def close(self, progress: Callable[[str], object] | None = None) -> None:
        """Write everything queued, however long that takes, stop the writer thread, checkpoint
        the WAL and close the connection (only once the thread has ended); then, for a run
        that has ended, write its listing file (:mod:`trainer.journal.listing_file`).

        ``progress`` receives a line every 2 s while points are still being written (default:
        the log). A writer that failed (disk full) closes without raising: see :attr:`error`.
        """
        if self._closing:
            return
        self._closing = True  # the writer thread drains the queue, then ends
        self._wake.set()
        started = time.monotonic()
        while self._thread.is_alive():
            self._thread.join(CLOSE_PROGRESS_S)
            if self._thread.is_alive():
                self._wake.set()
                line = (f"writing the journal: {self.queued_points:,} points left "
                        f"({time.monotonic() - started:.0f} s)")  # fmt: skip
                (progress or log.info)(line)
        if self._error is None:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError as exc:
                log.warning("WAL checkpoint at close failed: %s", exc)
        self._db.close()
        if self._error is None:
            # An ended run's listing beside the journal, so that a listing of many runs need
            # not open it (a live run's close writes none, and removes an old one).
            listing_file.write_listing(self.path)

    def failure(self) -> Exception:
        """The user-facing error for :attr:`error`."""
        exc = self._error
        if exc is not None and _is_disk_full(exc):
            return disk_full(f"the journal {self.path}", exc)
        return JournalError(f"the journal {self.path} could not be written: {exc}")

    # ---------------------------------------------------------------- writer thread
    def _run(self) -> None:
        try:
            self._build_summaries()
        except Exception as exc:
            self._error = exc
            log.error("building the journal's summaries failed: %s", exc)
            self._space.set()
            return
        last_checkpoint = time.monotonic()
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            closing = self._closing
            if self._queue and not self._lone_op_waits():
                try:
                    self._commit_batch()
                except Exception as exc:  # any error: the training thread must hear of it
                    self._error = exc
                    unexpected = not isinstance(exc, sqlite3.DatabaseError | pw.DatabaseError)
                    log.error("journal write failed: %s", exc, exc_info=unexpected)
                    self._space.set()
                    return
                self._committed = self._queue.taken  # all taken so far is committed now
                self._space.set()  # a log_scalars waiting for room may go on
            elif not self._queue and time.monotonic() - last_checkpoint > 30:
                # A quiet moment: keep the WAL from growing (PASSIVE never blocks readers).
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.DatabaseError as exc:  # not fatal: the next one tries again
                    log.warning("WAL checkpoint failed: %s", exc)
                last_checkpoint = time.monotonic()
            if closing and not self._queue:
                return

    def _lone_op_waits(self) -> bool:
        """True while the queue holds only a waiting operation (a system sample) before its
        due time: it commits with the next points or heartbeat instead of on its own."""
        queue = self._queue
        if self._closing or len(queue) != 1:
            return False
        item = queue[0]  # still there: only this thread takes items out
        return item[0] == _LAZY and time.monotonic() < item[2]

    def _build_summaries(self) -> None:
        """A journal migrated from schema v1 gets its summaries before anything else is
        written (log() meanwhile waits on the bounded queue; nothing is lost). Readers draw
        from the points until the build is complete; each chunk commits on its own."""
        complete_summaries(self._conn)

    def _commit_batch(self) -> None:
        queue = self._queue
        conn = self._conn
        count = 0
        synced: list[threading.Event] = []
        rows: list[tuple[int, int, int, float, int | None]] = []
        # The points again, as columns for the summaries (cheaper than a tuple per point).
        s_keys: list[int] = []
        s_steps: list[int] = []
        s_values: list[float] = []
        s_walls: list[int] = []
        add_key, add_step = s_keys.append, s_steps.append
        add_value, add_wall = s_values.append, s_walls.append
        steps: list[tuple[int, int, int]] = []
        attempt = self.attempt
        created_ms = self.created * 1000.0
        key_ids = self._key_ids
        run_step = self._run_step
        taken = queue.taken
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not sqlite_busy(exc):
                raise
            # Another program (an sqlite3 shell, a backup tool) held the write lock past the
            # busy timeout. Nothing is taken off the queue yet: trying again loses nothing.
            sqlite_transient(f"locking the journal {self.path} to write", attempts=3)(
                conn.execute, "BEGIN IMMEDIATE"
            )
        # The run's step as a heartbeat queued now would carry it: read before taking the
        # batch, so that it names no step whose points are still to come.
        beat_step = run_step() if run_step is not None else None
        beat = False
        try:
            while queue and count < 200_000:
                item = queue.popleft()
                count += 1
                if item[0] == _SCALARS:
                    _, step, wall, values = item
                    wall_ms = int(wall * 1000.0 - created_ms)
                    # When several points share a step, its wall time is stored once
                    # (step_wall) and they store NULL, unless logged later (an evaluation
                    # after the training step). A lone point keeps its own wall time.
                    own: int | None = wall_ms
                    if step > self._last_step:
                        self._last_step, self._last_wall = step, wall_ms
                        self._step_wall_stored = len(values) > 1
                        if self._step_wall_stored:
                            steps.append((attempt, step, wall_ms))
                            own = None
                    elif (
                        step == self._last_step
                        and self._step_wall_stored
                        and wall_ms - self._last_wall <= SHARED_WALL_MS
                    ):
                        own = None
                    for key, value in values.items():
                        key_id = key_ids.get(key)
                        if key_id is None:
                            key_id = self._new_key(key)
                        try:
                            number = float(value)
                        except (TypeError, ValueError):
                            self._warn_bad_value(key, value)
                            continue
                        if number != number:  # NaN: SQLite would store NULL
                            self._note_nan(conn, key, step)
                            continue
                        rows.append((key_id, attempt, step, number, own))
                        add_key(key_id)
                        add_step(step)
                        add_value(number)
                        add_wall(wall_ms)
                elif item[0] == _SYNC:
                    synced.append(item[1])
                else:
                    self._insert(rows, steps)
                    rows, steps = [], []
                    item[1](conn)
            self._insert(rows, steps)
            if s_keys:
                points = np.empty(len(s_keys), dtype=summaries.POINTS)
                points["key_id"] = s_keys
                points["step"] = s_steps
                points["value"] = s_values
                points["wall_ms"] = s_walls
                self._summaries.apply(conn, points)
            if beat_step is not None and queue.taken > taken:  # this batch holds points
                # The heartbeat rides along: no commit of its own for the follower to read.
                # Never below a step committed, nor below the last beat: a heartbeat's step
                # is the run's current step (readers take it as the run's progress).
                top = max(beat_step, self._last_step, self._beat_step)
                self._write_beat(conn, time.time(), top, os.getpid())
                beat = True
            conn.execute("COMMIT")
        except BaseException:
            # What the keeper cached may describe rows that were just rolled back.
            self._summaries.forget()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if beat:
            self.points_beat = time.monotonic()
        for done in synced:
            done.set()

    def _insert(
        self, rows: list[tuple[int, int, int, float, int | None]], steps: list[tuple[int, int, int]]
    ) -> None:
        conn = self._conn
        if steps:
            conn.executemany(_INSERT_STEP_WALL, steps)
        whole = len(rows) - len(rows) % _CHUNK
        for start in range(0, whole, _CHUNK):
            conn.execute(
                _INSERT_SCALAR_CHUNK,
                tuple(itertools.chain.from_iterable(rows[start : start + _CHUNK])),
            )
        if whole < len(rows):
            conn.executemany(_INSERT_SCALAR, rows[whole:])

    def _warn_bad_value(self, key: str, value: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("metric %r: %r is not a number; such values are skipped", key, value)

    def _note_nan(self, conn: sqlite3.Connection, key: str, step: int) -> None:
        """A NaN is not stored (a gap in the curve); its first one per key is an event, so a
        diverging run is seen at once."""
        if ("nan", key) in self._warned:
            return
        self._warned.add(("nan", key))
        log.warning("metric %r is NaN at step %d: NaN values are not stored", key, step)
        conn.execute(
            "INSERT INTO event (wall, attempt, step, kind, message, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), self.attempt, step, "warning", f"{key} is NaN from step {step}",
             json.dumps({"key": key, "nan": True})),
        )  # fmt: skip

    def _new_key(self, key: str) -> int:
        cur = self._conn.execute("INSERT INTO metric_key (name) VALUES (?)", (str(key),))
        key_id = int(cur.lastrowid or 0)
        self._key_ids[key] = key_id
        return key_id


def complete_summaries(conn: sqlite3.Connection) -> bool:
    """Build a journal's summaries if they are not complete (its one writer's connection, no
    transaction open), a chunk per commit; True if it built them."""
    if _summaries_complete(conn):
        return False
    started = time.monotonic()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for done in summaries.build_all(conn):
            conn.execute("COMMIT")
            log.info("building the journal's summaries: %d points", done)
            conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'summaries'", (SUMMARIES_COMPLETE,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.info("journal summaries built in %.1f s", time.monotonic() - started)
    return True


def _summaries_complete(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = 'summaries'").fetchone()
    return row is not None and row[0] == SUMMARIES_COMPLETE


def _process_start_time() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # psutil missing a figure must never stop a run
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("traindesk")
    except PackageNotFoundError:
        return "dev"


#: Statuses an outside note may overwrite: the attempt's process is gone and left it "live".
_LIVE_STATUSES = ("starting", "running", "paused", "stopping")


def annotate(
    path: Path,
    events: Sequence[tuple[str, str, dict[str, Any] | None] | tuple[str, str, Any, float]],
    *,
    status: str | None = None,
    exit_reason: str | None = None,
    timeout_s: float = 2.0,
) -> bool:
    """Journal events, and a final status, from outside the run's process (its supervisor).

    ``events`` are ``(kind, message, data)`` or ``(kind, message, data, wall)``, stamped
    with the run's current attempt and step (and the time now, unless given). ``status``
    replaces only a live status (a dead attempt's "running"), never one the trainer wrote at
    its end. One short transaction; returns False (and logs why) instead of raising, since
    the supervisor must go on whatever the journal's state. Written under the run folder's
    lock: if an attempt holds it (a resume started meanwhile), nothing is written. A note
    that changes the journal replaces its listing file (:mod:`listing_file`), as a close does.
    """
    from trainer.runlock import RunLock

    try:
        lock = RunLock.acquire(path.parent, role="supervisor")
    except (TrainDeskError, OSError) as exc:  # in use, or a lock file that links out
        log.warning("cannot note %s in %s: %s", [e[0] for e in events], path, exc)
        return False
    try:
        conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        lock.release()
        log.warning("cannot note %s in %s: %s", [e[0] for e in events], path, exc)
        return False
    changed = False
    try:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT attempt, step FROM run").fetchone()
        if row is None:
            conn.execute("ROLLBACK")
            return False
        attempt, step = row
        now = time.time()
        conn.executemany(
            "INSERT INTO event (wall, attempt, step, kind, message, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(e[3] if len(e) > 3 else now, attempt, step, e[0], e[1],
              None if e[2] is None else json.dumps(e[2])) for e in events],
        )  # fmt: skip
        changed = bool(events)  # not yet committed: reset if the commit fails
        if status is not None:
            marks = ", ".join("?" * len(_LIVE_STATUSES))
            updated = conn.execute(
                "UPDATE run SET status = ?, exit_reason = ?, updated = ? "
                f"WHERE status IN ({marks})",
                (status, exit_reason, now, *_LIVE_STATUSES),
            )
            changed = changed or updated.rowcount > 0
        if changed:
            # The journal changes with this commit: its listing file would describe the old
            # one. A supervisor's final status after a clean end changes nothing: kept.
            with contextlib.suppress(OSError):
                jdb.discard_listing(path)
        conn.execute("COMMIT")
        if changed:
            # Into the file itself, as the writer's close does (the supervisor's own reader
            # keeps the WAL from going away): a listing then reads no WAL, or no journal.
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.info("WAL checkpoint after a note failed: %s", exc)
        return True
    except sqlite3.Error as exc:
        log.warning("cannot note %s in %s: %s", [e[0] for e in events], path, exc)
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        changed = False
        return False
    finally:
        conn.close()
        if changed:  # a run the note ended (crashed, failed): its listing file, as at a close
            listing_file.write_listing(path)
        lock.release()
