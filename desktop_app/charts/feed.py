"""One run folder's journal, followed incrementally. Qt-free; use it from one thread at a time."""

from __future__ import annotations

from pathlib import Path

from desktop_app.charts.model import HISTORY_LIMIT, EnvelopeRequest
from trainer.journal.envelope import Envelope
from trainer.journal.reader import JournalReader, TailBatch


class RunFeed:
    """Opens the journal on the first poll; each poll returns what is new since the last."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._reader: JournalReader | None = None
        self._closed = False

    def poll(self) -> TailBatch:
        """What is new since the last poll (the first returns everything).

        Raises :class:`trainer.errors.JournalError` for an unreadable journal.
        """
        if self._closed:
            raise ValueError("the feed is closed")
        if self._reader is None:
            self._reader = JournalReader(self.folder)
        return self._reader.tail(history_limit=HISTORY_LIMIT)

    def envelope(self, key: str, request: EnvelopeRequest) -> Envelope:
        """A viewport read of ``key`` (after the first poll)."""
        if self._closed or self._reader is None:
            raise ValueError("the feed is closed")
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
