"""The lease store: which run holds which GPU, and which runs wait for one, machine-wide.

One small SQLite file (``leases.sqlite`` in the user state dir, or ``$TRAINDESK_LEASES``)
shared by every TrainDesk process on the machine: desktop apps, headless ``trainer run``s,
supervisors. Every decision is one ``BEGIN IMMEDIATE`` transaction, so two processes racing
for the last GPU are serialised by SQLite's lock and never both win. A lease names the process
that uses the device (pid and start time); a lease or queue entry whose process is gone is
reclaimed by whoever looks next. The file is crash-safe like any SQLite database: a process
killed mid-transaction leaves the previous state.

Why over 400 lines: every decision about leases and the queue is one SQLite transaction in this
file, so that the rules (first in, first out within a priority; the leases of dead processes
reclaimed) read in one place.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainer import settings
from trainer.errors import UsageError
from trainer.journal.status import process_alive, process_start_time
from trainer.private import private_dir, private_file, tighten
from trainer.retry import sqlite_transient

log = logging.getLogger(__name__)

ENV_LEASES = settings.LEASES.name
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gpu INTEGER NOT NULL,
    run TEXT NOT NULL,          -- the run folder
    pid INTEGER NOT NULL,
    pid_started REAL,
    host TEXT NOT NULL,
    mem_budget INTEGER,         -- bytes; NULL: no budget
    shared INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS lease_gpu ON lease (gpu);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    request TEXT NOT NULL,      -- JSON of the GpuRequest
    priority INTEGER NOT NULL DEFAULT 0,
    seq REAL NOT NULL,          -- FIFO order within a priority; reordering changes it
    pid INTEGER NOT NULL,
    pid_started REAL,
    host TEXT NOT NULL,
    created REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS grant_log (  -- every grant, for audits and the race test
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gpu INTEGER NOT NULL,
    run TEXT NOT NULL,
    pid INTEGER NOT NULL,
    granted REAL NOT NULL,
    released REAL
);
"""

POLICIES = ("least-used", "pack", "spread")


class Device(Protocol):
    """What the allocator needs of a GPU reading (``GpuReading`` has it)."""

    @property
    def index(self) -> int: ...
    @property
    def mem_used(self) -> int | None: ...
    @property
    def mem_total(self) -> int | None: ...
    @property
    def processes(self) -> list[tuple[int, int | None]] | None: ...


@dataclass(frozen=True)
class GpuRequest:
    """What a run asks for: ``count`` GPUs (or the devices ``ids``), each with ``mem_budget``
    bytes free, exclusively unless ``share``."""

    count: int = 0
    ids: tuple[int, ...] | None = None
    mem_budget: int | None = None
    share: bool = False
    policy: str = "least-used"

    @property
    def wants_gpu(self) -> bool:
        return self.count > 0 or bool(self.ids)

    @property
    def n(self) -> int:
        return len(self.ids) if self.ids else self.count

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "ids": list(self.ids) if self.ids else None,
            "mem_budget": self.mem_budget,
            "share": self.share,
            "policy": self.policy,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GpuRequest:
        ids = data.get("ids")
        return cls(count=int(data.get("count") or 0), ids=tuple(ids) if ids else None,
                   mem_budget=data.get("mem_budget"), share=bool(data.get("share")),
                   policy=str(data.get("policy") or "least-used"))  # fmt: skip

    def describe(self) -> str:
        what = (f"GPU {','.join(map(str, self.ids))}" if self.ids
                else f"{self.count} GPU{'s' * (self.count != 1)}")  # fmt: skip
        if self.mem_budget:
            what += f" with {self.mem_budget / 2**30:.3g} GiB free"
        return what + (" (shared)" if self.share else "")


@dataclass(frozen=True)
class Lease:
    id: int
    gpu: int
    run: str
    pid: int
    mem_budget: int | None
    shared: bool
    created: float


@dataclass(frozen=True)
class QueueEntry:
    id: int
    run: str
    request: GpuRequest
    priority: int
    position: int  # 1-based place in the queue
    pid: int
    created: float
    reason: str


@dataclass
class Grant:
    """The outcome of one try: the leases got, or why not (and who holds what)."""

    leases: list[Lease] = field(default_factory=list)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.leases)


def store_path() -> Path:
    """``$TRAINDESK_LEASES``, else ``leases.sqlite`` in the user state dir."""
    env = settings.LEASES.raw()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("traindesk", appauthor=False)) / "leases.sqlite"


def _me() -> tuple[int, float | None, str]:
    return os.getpid(), process_start_time(), socket.gethostname()


class LeaseStore:
    """The machine's GPU leases and queue (see the module docstring). Cheap to open."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else store_path()
        try:
            # Private whatever the umask: another user must not plant or read leases.
            private_dir(self.path.parent, "lease store folder")
            private_file(self.path, "lease store")
            for suffix in ("-wal", "-shm"):
                tighten(self.path.with_name(self.path.name + suffix), 0o600, "lease store")
            self._conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            # Switching a new file to WAL takes an exclusive lock without waiting on the busy
            # timeout: two processes opening the store at once meet "locked" here. Retried.
            sqlite_transient(f"opening the lease store {self.path}", attempts=8)(
                self._conn.execute, "PRAGMA journal_mode = WAL"
            )
            sqlite_transient(f"creating the lease store {self.path}", attempts=8)(
                self._conn.executescript, _SCHEMA
            )
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(
                f"the GPU lease store {self.path} cannot be opened ({exc}): make its folder "
                f"writable or point ${ENV_LEASES} elsewhere"
            ) from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LeaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._reclaim(conn)
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # ------------------------------------------------------------------ reclaiming
    def _reclaim(self, conn: sqlite3.Connection) -> None:
        """Drop leases and queue entries of processes that are gone (on this host)."""
        host = socket.gethostname()
        now = time.time()
        for table in ("lease", "queue"):
            rows = conn.execute(
                f"SELECT id, run, pid, pid_started FROM {table} WHERE host = ?", (host,)
            ).fetchall()
            dead = [r for r in rows if not process_alive(r[2], r[3])]
            for row_id, run, pid, _ in dead:
                log.warning("reclaimed the %s of run %s: its process %d is gone",
                            table, Path(run).name, pid)  # fmt: skip
                conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))
                if table == "lease":
                    conn.execute("UPDATE grant_log SET released = ? WHERE run = ? AND pid = ? "
                                 "AND released IS NULL", (now, run, pid))  # fmt: skip

    # ------------------------------------------------------------------ queries
    def leases(self) -> list[Lease]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, gpu, run, pid, mem_budget, shared, created FROM lease ORDER BY gpu, id"
            ).fetchall()
        return [Lease(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in rows]

    def queue(self) -> list[QueueEntry]:
        with self._tx() as conn:
            return self._queue(conn)

    @staticmethod
    def _queue(conn: sqlite3.Connection) -> list[QueueEntry]:
        rows = conn.execute(
            "SELECT id, run, request, priority, pid, created, reason FROM queue "
            "ORDER BY priority DESC, seq, id"
        ).fetchall()
        return [
            QueueEntry(r[0], r[1], GpuRequest.from_json(json.loads(r[2])), r[3], n, r[4], r[5],
                       r[6])
            for n, r in enumerate(rows, 1)
        ]  # fmt: skip

    # ------------------------------------------------------------------ granting
    def try_acquire(
        self,
        run: str,
        request: GpuRequest,
        devices: Sequence[Device],
        *,
        simulated: bool = False,
        queue_id: int | None = None,
        pid: int | None = None,
    ) -> Grant:
        """Lease devices for ``run`` now if they are free (and, for a queued run, if it is
        first in the queue); otherwise return why not. Never shares a device unless every
        holder and the request allow it."""
        me_pid, me_started, host = _me()
        if pid is not None and pid != me_pid:
            me_pid, me_started = pid, process_start_time(pid)
        with self._tx() as conn:
            if queue_id is not None:
                ahead = self._ahead_of(conn, queue_id)
                if ahead is not None:
                    conn.execute("UPDATE queue SET reason = ? WHERE id = ?", (ahead, queue_id))
                    return Grant(reason=ahead)
            held = conn.execute("SELECT gpu, run, mem_budget, shared, pid FROM lease").fetchall()
            picked, reason = choose(request, devices, held, simulated=simulated)
            if not picked:
                if queue_id is not None:
                    conn.execute("UPDATE queue SET reason = ? WHERE id = ?", (reason, queue_id))
                return Grant(reason=reason)
            now = time.time()
            leases = []
            for gpu in picked:
                cur = conn.execute(
                    "INSERT INTO lease (gpu, run, pid, pid_started, host, mem_budget, shared, "
                    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (gpu, run, me_pid, me_started, host, request.mem_budget, int(request.share),
                     now),
                )  # fmt: skip
                conn.execute("INSERT INTO grant_log (gpu, run, pid, granted) VALUES (?, ?, ?, ?)",
                             (gpu, run, me_pid, now))  # fmt: skip
                leases.append(Lease(int(cur.lastrowid or 0), gpu, run, me_pid,
                                    request.mem_budget, request.share, now))  # fmt: skip
            if queue_id is not None:
                conn.execute("DELETE FROM queue WHERE id = ?", (queue_id,))
        return Grant(leases=leases)

    def release(self, run: str, pid: int | None = None) -> int:
        """Give back ``run``'s leases (those of ``pid`` only, if given); returns how many."""
        with self._tx() as conn:
            where, args = ("run = ?", (run,)) if pid is None else ("run = ? AND pid = ?",
                                                                    (run, pid))  # fmt: skip
            n = conn.execute(f"DELETE FROM lease WHERE {where}", args).rowcount
            conn.execute(f"UPDATE grant_log SET released = ? WHERE {where} AND released IS NULL",
                         (time.time(), *args))  # fmt: skip
        return n

    # ------------------------------------------------------------------ the queue
    def enqueue(self, run: str, request: GpuRequest, *, priority: int = 0,
                reason: str = "") -> int:  # fmt: skip
        """Put ``run`` (this process) at the end of its priority's queue; returns its id."""
        pid, started, host = _me()
        with self._tx() as conn:
            top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
            cur = conn.execute(
                "INSERT INTO queue (run, request, priority, seq, pid, pid_started, host, "
                "created, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run, json.dumps(request.to_json()), priority, top + 1, pid, started, host,
                 time.time(), reason),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def in_queue(self, queue_id: int) -> bool:
        with self._tx() as conn:
            row = conn.execute("SELECT 1 FROM queue WHERE id = ?", (queue_id,)).fetchone()
        return row is not None

    def cancel(self, queue_id: int) -> bool:
        """Take an entry out of the queue; its waiting process notices and stops."""
        with self._tx() as conn:
            return conn.execute("DELETE FROM queue WHERE id = ?", (queue_id,)).rowcount > 0

    def move(self, queue_id: int, position: int) -> bool:
        """Move an entry to ``position`` (1-based) among the entries of its priority."""
        with self._tx() as conn:
            entries = self._queue(conn)
            entry = next((e for e in entries if e.id == queue_id), None)
            if entry is None:
                return False
            same = [e for e in entries if e.priority == entry.priority and e.id != queue_id]
            index = min(max(position, 1), len(same) + 1) - 1
            same.insert(index, entry)
            for seq, item in enumerate(same, 1):
                conn.execute("UPDATE queue SET seq = ? WHERE id = ?", (seq, item.id))
        return True

    def set_priority(self, queue_id: int, priority: int) -> bool:
        with self._tx() as conn:
            top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()[0]
            return conn.execute("UPDATE queue SET priority = ?, seq = ? WHERE id = ?",
                                (priority, top + 1, queue_id)).rowcount > 0  # fmt: skip

    def _ahead_of(self, conn: sqlite3.Connection, queue_id: int) -> str | None:
        entries = self._queue(conn)
        if all(entry.id != queue_id for entry in entries):
            return "cancelled: taken out of the queue"
        if entries[0].id == queue_id:
            return None
        return f"waiting behind run {Path(entries[0].run).name} in the queue"

    def grant_log(self) -> list[tuple[int, str, int, float, float | None]]:
        """Every grant ever made: (gpu, run, pid, granted, released)."""
        with self._tx() as conn:
            return conn.execute(
                "SELECT gpu, run, pid, granted, released FROM grant_log ORDER BY id"
            ).fetchall()


def choose(
    request: GpuRequest,
    devices: Sequence[Device],
    held: Sequence[tuple[int, str, int | None, int, int]],
    *,
    simulated: bool = False,
) -> tuple[list[int], str]:
    """Pick devices for ``request`` given the current leases ``held`` ((gpu, run, budget,
    shared, pid) rows); returns (indexes, "") or ([], the reason)."""
    by_gpu: dict[int, list[tuple[str, int | None, bool, int]]] = {}
    for gpu, run, budget, shared, pid in held:
        by_gpu.setdefault(gpu, []).append((run, budget, bool(shared), pid))
    known = {d.index: d for d in devices}
    free_mem: dict[int, int | None] = {}
    blocked: dict[int, str] = {}
    for device in devices:
        holders = by_gpu.get(device.index, [])
        free_mem[device.index] = _free_memory(device, holders, simulated)
        if holders and not (request.share and all(h[2] for h in holders)):
            names = ", ".join(sorted({Path(h[0]).name for h in holders}))
            blocked[device.index] = f"GPU {device.index} held by run {names}"
        elif request.mem_budget and (free_mem[device.index] or 0) < request.mem_budget:
            free = free_mem[device.index]
            blocked[device.index] = (
                f"GPU {device.index} has {'?' if free is None else f'{free / 2**30:.3g}'} GiB free"
            )
    if request.ids:
        missing = [i for i in request.ids if i not in known]
        if missing:
            return [], f"no GPU {missing[0]} on this machine"
        busy = [blocked[i] for i in request.ids if i in blocked]
        if busy:
            return [], f"waiting for {request.describe()}; " + "; ".join(busy)
        return list(request.ids), ""
    candidates = [d.index for d in devices if d.index not in blocked]
    if len(candidates) < request.count:
        why = "; ".join(blocked.values()) or "not enough GPUs"
        return [], f"waiting for {request.describe()}; {why}"

    def used(index: int) -> int:
        total = known[index].mem_total or 0
        free = free_mem[index]
        return total - free if free is not None else total

    if request.policy == "pack":
        candidates.sort(key=lambda i: (-len(by_gpu.get(i, [])), -used(i), i))
    elif request.policy == "spread":
        candidates.sort(key=lambda i: (len(by_gpu.get(i, [])), used(i), i))
    else:
        candidates.sort(key=lambda i: (used(i), i))
    return candidates[: request.count], ""


def _free_memory(
    device: Device, holders: list[tuple[str, int | None, bool, int]], simulated: bool
) -> int | None:
    """Free bytes, counting what other processes use and what leases have budgeted.

    A simulated device's "used" figure is a display animation: there only budgets count.
    """
    if device.mem_total is None:
        return None
    budgets = sum(b or 0 for _, b, _, _ in holders)
    if simulated:
        return max(0, device.mem_total - budgets)
    if device.mem_used is None:
        return None
    # Our lease holders' own usage is already in mem_used; a budget not yet used is not.
    ours_used = 0
    pids = {h[3] for h in holders}
    for pid, mem in device.processes or []:
        if pid in pids and mem:
            ours_used += mem
    reserved = sum(max(0, (b or 0)) for _, b, _, _ in holders)
    return max(0, device.mem_total - device.mem_used - max(0, reserved - ours_used))
