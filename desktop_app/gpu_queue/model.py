"""The queue of runs waiting for GPUs, as the machine's lease store holds it. Qt-free.

The queue lives in the lease store (``$TRAINDESK_LEASES``, else ``leases.sqlite`` in the user
state dir), shared by every TrainDesk process on the machine; the waiting is done by each run's
own trainer process. So the app only reads and edits it: a queue made by headless ``trainer
run``s or by another app window is shown the same, and it outlives the app.

The functions here block (SQLite, a busy timeout): call them off the GUI thread. The
:class:`QueueModel` holds the last reading and tells its listeners only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.resources.store import LeaseStore, QueueEntry

Listener = Callable[[], None]
StoreFactory = Callable[[], LeaseStore]


@dataclass(frozen=True)
class QueueRow:
    """One queue entry as the view shows it."""

    id: int
    run: str  # the run folder
    request: str  # what it asks for, e.g. "2 GPUs with 20 GiB free"
    priority: int
    position: int  # 1-based
    reason: str  # why it waits, as the trainer last wrote it
    since: float  # unix time it was queued
    pid: int

    @property
    def name(self) -> str:
        return Path(self.run).name

    @classmethod
    def from_entry(cls, entry: QueueEntry) -> QueueRow:
        return cls(
            entry.id,
            entry.run,
            entry.request.describe(),
            entry.priority,
            entry.position,
            entry.reason,
            entry.created,
            entry.pid,
        )


def read_queue(store: StoreFactory = LeaseStore) -> list[QueueRow]:
    """The queue, first to start first (blocking). Entries of dead processes are reclaimed."""
    with store() as lease_store:
        return [QueueRow.from_entry(entry) for entry in lease_store.queue()]


def cancel_entry(entry_id: int, store: StoreFactory = LeaseStore) -> bool:
    """Take an entry out of the queue: its trainer notices within a second and stops."""
    with store() as lease_store:
        return lease_store.cancel(entry_id)


def move_entry(entry_id: int, position: int, store: StoreFactory = LeaseStore) -> bool:
    """Move an entry to ``position`` (1-based) among the entries of its priority."""
    with store() as lease_store:
        return lease_store.move(entry_id, position)


def set_entry_priority(entry_id: int, priority: int, store: StoreFactory = LeaseStore) -> bool:
    """Give an entry another priority (it goes last among that priority's entries)."""
    with store() as lease_store:
        return lease_store.set_priority(entry_id, priority)


def rank_in_priority(rows: list[QueueRow], entry_id: int) -> tuple[int, int] | None:
    """(1-based place of the entry among the rows of its priority, how many there are)."""
    entry = next((r for r in rows if r.id == entry_id), None)
    if entry is None:
        return None
    same = [r.id for r in rows if r.priority == entry.priority]
    return same.index(entry_id) + 1, len(same)


class QueueModel:
    """The last reading of the queue, and the error of the last read (if it failed)."""

    def __init__(self) -> None:
        self._rows: list[QueueRow] = []
        self.error: str | None = None
        self.loaded = False
        self._listeners: list[Listener] = []

    @property
    def rows(self) -> list[QueueRow]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def row(self, entry_id: int) -> QueueRow | None:
        return next((r for r in self._rows if r.id == entry_id), None)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def set_rows(self, rows: list[QueueRow]) -> bool:
        """A successful reading; listeners hear of it only if something changed."""
        changed = rows != self._rows or self.error is not None or not self.loaded
        self._rows, self.error, self.loaded = list(rows), None, True
        if changed:
            self._notify()
        return changed

    def set_error(self, message: str) -> bool:
        """A failed reading: the rows are kept as last seen, with the error."""
        if message == self.error:
            return False
        self.error = message
        self._notify()
        return True

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
