"""One run folder's journal, followed incrementally. Qt-free; use it from one thread at a time."""

from __future__ import annotations

import threading
from pathlib import Path

from desktop_app.charts.model import EnvelopeRequest
from trainer.journal.envelope import Envelope
from trainer.journal.reader import HISTORY_LIMIT, JournalReader, TailBatch

#: A curve that has taken in this many times :data:`HISTORY_LIMIT` points since its run was
#: read from the start has its run read again from the start: its points become history,
#: drawn by viewport, so a run watched for days holds no more than this in memory.
LIVE_FACTOR = 2


def live_limit() -> int:
    """Points a curve of a live run may hold in memory before the run is read afresh."""
    return LIVE_FACTOR * HISTORY_LIMIT


class RunFeed:
    """Opens the journal on the first poll; each poll returns what is new since the last."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._reader: JournalReader | None = None
        self._version: int | None = None  # data_version at the last tail read
        self._closed = False
        # Exact viewport reads run on their own thread (traindesk-view) with their own
        # connection, so that a slow one never holds up the tails and overviews.
        self._view_reader: JournalReader | None = None
        self._view_lock = threading.Lock()

    def poll(self) -> TailBatch:
        """What is new since the last poll (the first returns everything).

        Raises :class:`trainer.errors.JournalError` for an unreadable journal.
        """
        if self._closed:
            raise ValueError("the feed is closed")
        if self._reader is None:
            self._reader = JournalReader(self.folder)
        self._version = self._reader.data_version()
        return self._reader.tail(history_limit=HISTORY_LIMIT)

    def poll_if_changed(self) -> TailBatch | None:
        """As :meth:`poll`, or None without reading when nothing was committed since the
        last poll (SQLite's data_version: a finished run costs one pragma a poll)."""
        if (
            self._reader is not None
            and not self._closed
            and self._reader.data_version() == self._version
        ):
            return None
        return self.poll()

    def envelope(self, key: str, request: EnvelopeRequest, *, on_view: bool = False) -> Envelope:
        """A viewport read of ``key``: a quick overview on the tail's connection (its
        thread; opened here for a feed whose tail someone else reads), an exact view read, or
        any read with ``on_view``, on the view connection (any thread)."""
        if self._closed:
            raise ValueError("the feed is closed")
        if on_view or not request.overview:
            with self._view_lock:
                if self._closed:
                    raise ValueError("the feed is closed")
                if self._view_reader is None:
                    self._view_reader = JournalReader(self.folder)
                return self._view_reader.envelope(
                    key, request.x0, request.x1, request.width, axis=request.axis,
                    exact=not request.overview,
                )  # fmt: skip
        if self._reader is None:
            self._reader = JournalReader(self.folder)
        return self._reader.envelope(
            key, request.x0, request.x1, request.width, axis=request.axis,
            exact=not request.overview,
        )  # fmt: skip

    def close(self) -> None:
        """Close the reader; idempotent."""
        self._closed = True
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        with self._view_lock:  # waits for a view read in flight
            if self._view_reader is not None:
                self._view_reader.close()
                self._view_reader = None
