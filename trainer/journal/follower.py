"""Following one run's journal: one read connection, change noticed cheaply, only new rows read.

A :class:`Follower` is the one reader of a run that the app (or a CLI command) keeps open. Each
:meth:`Follower.poll` first asks SQLite whether anything was committed since the last look
(``PRAGMA data_version`` on the follower's own connection: no table is read) and whether the
journal file is still the same file (its device and inode); only then does it read, and then
only what is new (:meth:`~trainer.journal.reader.JournalReader.tail`). A finished run that
nobody writes costs one pragma and one ``stat`` per poll, and no read.

:meth:`Follower.publish` hands the same :class:`Delta` to every subscriber: the runs table,
the health panel, the system samples, the charts. ``poll`` blocks (call it on a worker
thread); ``publish`` and ``subscribe`` run on the subscribers' thread, which is also the only
one that touches what the follower keeps for late subscribers (the run row, the events and
the system samples seen so far; not the points, which only the charts keep).

Qt-free and torch-free. :class:`Followers` keeps one follower per folder for several owners.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import JournalError
from trainer.journal.reader import (
    HISTORY_LIMIT,
    EventRow,
    JournalReader,
    RunInfo,
    SampleRow,
    TailBatch,
)
from trainer.paths import JOURNAL_NAME

#: Seconds before an unreadable journal is tried again.
RETRY_S = 3.0


@dataclass(frozen=True)
class Delta:
    """What one poll of a run found, handed to every subscriber in poll order.

    ``first``: the batch holds everything from the journal's start (the first read, a journal
    replaced on disk, or a :meth:`Follower.restart`): a subscriber drops what it kept of the
    run. ``replay``: a catch-up for a subscriber that joined late, built from what the
    follower kept (run row, events, samples; no points), seen by that subscriber only.
    ``error``: the journal could not be read (``batch`` is None); it is tried again later.
    """

    folder: Path
    batch: TailBatch | None
    first: bool = False
    replay: bool = False
    error: str | None = None

    @property
    def run(self) -> RunInfo | None:
        return self.batch.run if self.batch is not None else None


Subscriber = Callable[[Delta], None]


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, None if it is gone: a new inode is a replaced journal."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Follower:
    """One run folder's journal, followed incrementally. Poll from one thread at a time."""

    def __init__(self, folder: Path, *, history_limit: int | None = HISTORY_LIMIT) -> None:
        self.folder = Path(folder)
        self.path = self.folder / JOURNAL_NAME
        self.history_limit = history_limit
        self._reader: JournalReader | None = None
        self._version: int | None = None
        self._file: tuple[int, int] | None = None
        self._retry_at = 0.0
        self._restart = False
        self._closed = False
        self._subscribers: list[Subscriber] = []
        #: Tail reads done (a poll that found no change reads nothing).
        self.reads = 0
        #: Polls done, with or without a read.
        self.polls = 0
        # Kept for late subscribers; touched only on the subscribers' thread (publish).
        self.run: RunInfo | None = None
        self.events: list[EventRow] = []
        self.samples: list[SampleRow] = []
        self.error: str | None = None

    # ------------------------------------------------------------------ the worker's side
    def poll(self, now: float | None = None) -> Delta | None:
        """What is new since the last poll, or None when nothing changed (nothing is read).

        Blocking; never raises for an unreadable journal (the Delta says why).
        """
        if self._closed:
            raise ValueError(f"the follower of {self.folder} is closed")
        self.polls += 1
        now = time.monotonic() if now is None else now
        first = False
        try:
            file_id = _file_id(self.path)
            if self._reader is not None and (self._restart or file_id != self._file):
                self._drop_reader()  # replaced on disk (or asked): read it again from its start
            if self._reader is None:
                if now < self._retry_at:
                    return None
                self._restart = False
                self._reader = JournalReader(self.folder)
                self._file = file_id
                first = True
            else:
                version = self._data_version()
                if version == self._version:
                    return None
            self._version = self._data_version()
            batch = self._reader.tail(history_limit=self.history_limit)
        except (JournalError, sqlite3.Error, OSError) as exc:
            self._drop_reader()
            self._retry_at = now + RETRY_S
            return Delta(self.folder, None, error=str(exc) or type(exc).__name__)
        self.reads += 1
        return Delta(self.folder, batch, first=first)

    def restart(self) -> None:
        """Read the journal again from its start at the next poll (a ``first`` delta)."""
        self._restart = True

    def close(self) -> None:
        """Close the read connection (on the polling thread, or once no poll can run)."""
        self._closed = True
        self._drop_reader()

    @property
    def closed(self) -> bool:
        return self._closed

    def _data_version(self) -> int:
        # The reader's own connection: data_version tells of commits by any *other*
        # connection since this one last looked, without reading a table.
        assert self._reader is not None
        return self._reader.data_version()

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._version = None

    # ------------------------------------------------------------------ the subscribers' side
    def subscribe(self, subscriber: Subscriber, *, replay: bool = True) -> Callable[[], None]:
        """Hand every later delta to ``subscriber``; with ``replay``, first what is known so
        far (run row, events, samples; no points). Returns the function that unsubscribes."""
        self._subscribers.append(subscriber)
        if replay and self.run is not None:
            snapshot = TailBatch(run=self.run, events=list(self.events),
                                 samples=list(self.samples))  # fmt: skip
            subscriber(Delta(self.folder, snapshot, first=True, replay=True))

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, delta: Delta) -> None:
        """Keep what late subscribers need, then hand ``delta`` to every subscriber."""
        if delta.error is not None:
            self.error = delta.error
        elif delta.batch is not None:
            self.error = None
            if delta.first:
                self.events, self.samples = [], []
            self.run = delta.batch.run
            self.events.extend(delta.batch.events)
            self.samples.extend(delta.batch.samples)
        for subscriber in list(self._subscribers):
            subscriber(delta)


class Followers:
    """One :class:`Follower` per folder, shared by owners (a panel, the charts, the table).

    :meth:`follow` and :meth:`unfollow` run on the subscribers' thread; :meth:`poll_all` on
    the one polling thread, which also closes the followers nobody follows any more (a
    follower may be mid-poll when it is dropped).
    """

    def __init__(self, *, history_limit: int | None = HISTORY_LIMIT) -> None:
        self.history_limit = history_limit
        self._followers: dict[Path, Follower] = {}
        self._owners: dict[Path, set[object]] = {}
        self._retired: list[Follower] = []
        self._lock = threading.Lock()

    def follow(self, folder: Path, owner: object) -> Follower:
        folder = Path(folder)
        follower = self._followers.get(folder)
        if follower is None:
            follower = self._followers[folder] = Follower(folder, history_limit=self.history_limit)
        self._owners.setdefault(folder, set()).add(owner)
        return follower

    def unfollow(self, folder: Path, owner: object) -> None:
        folder = Path(folder)
        owners = self._owners.get(folder)
        if owners is None:
            return
        owners.discard(owner)
        if not owners:
            del self._owners[folder]
            with self._lock:
                self._retired.append(self._followers.pop(folder))

    def get(self, folder: Path) -> Follower | None:
        return self._followers.get(Path(folder))

    def __len__(self) -> int:
        return len(self._followers)

    def followers(self) -> list[Follower]:
        """The followed runs now (a snapshot to hand to :meth:`poll_all`)."""
        return list(self._followers.values())

    def poll_all(self, followers: Iterable[Follower]) -> list[tuple[Follower, Delta]]:
        """Close the dropped followers, then poll ``followers``: the deltas of those that
        changed (blocking: the polling thread)."""
        self.close_retired()
        out = []
        for follower in followers:
            if follower.closed:
                continue
            delta = follower.poll()
            if delta is not None:
                out.append((follower, delta))
        return out

    @property
    def has_retired(self) -> bool:
        """Dropped followers wait to be closed (by the next :meth:`poll_all`)."""
        with self._lock:
            return bool(self._retired)

    def close_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for follower in retired:
            follower.close()

    def close(self) -> None:
        """Close every follower (once no poll can run any more)."""
        self.close_retired()
        for follower in self._followers.values():
            follower.close()
        self._followers.clear()
        self._owners.clear()
