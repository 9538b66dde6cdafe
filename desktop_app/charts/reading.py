"""Reading the selected runs' journals on the background worker, on a schedule.

In the app the charts subscribe to the window's :class:`~desktop_app.follow.hub.FollowHub`
(:meth:`JournalFeeds.use_hub`): the run's one follower reads what is new and hands the same
delta to the charts, the health panel and the system samples. Without a hub (tests and
benchmarks that make a panel alone) each run's :class:`~desktop_app.charts.feed.RunFeed`
reads its own tail: :meth:`JournalFeeds.poll` submits the reads that are due (a live run every
0.25 s, a finished one every second but only if its journal changed, an unreadable one again
after a few seconds, from the start). Either way each run has a feed for the viewport reads of
its long curves. Results come back on the GUI thread through the callbacks. A feed that is
dropped is closed on the worker, after any read of it in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from desktop_app.background import BackgroundIO
from desktop_app.charts.feed import RunFeed
from desktop_app.charts.model import EnvelopeRequest
from desktop_app.follow.hub import FollowHub
from trainer.journal.envelope import Envelope
from trainer.journal.follower import Delta
from trainer.journal.reader import TailBatch

log = logging.getLogger(__name__)

POLL_LIVE_S = 0.25  # between two reads of a run that is changing
POLL_IDLE_S = 1.0  # of a finished run (it may still be resumed)
RETRY_S = 3.0  # before reading an unreadable journal again
FINAL_STATUSES = frozenset({"finished", "stopped", "failed", "crashed"})


class JournalFeeds:
    """The feeds of the selected runs and when each is read next."""

    def __init__(
        self,
        io: BackgroundIO,
        on_batch: Callable[[Path, TailBatch], None],
        on_error: Callable[[Path, str], None],
        on_restart: Callable[[Path], None],
        view_io: BackgroundIO | None = None,
    ) -> None:
        """``on_restart(folder)`` comes before a run is read again from its start;
        ``view_io`` runs the exact viewport reads (default: ``io``)."""
        self._io = io
        self._view_io = view_io or io
        self._on_batch = on_batch
        self._on_error = on_error
        self._on_restart = on_restart
        self._feeds: dict[Path, RunFeed | None] = {}  # None: unreadable, retried later
        self._next: dict[Path, float] = {}
        self._retired: set[RunFeed] = set()
        self._overview_turn = False  # which thread reads the next overview
        self._ended: set[Path] = set()  # runs last read with an ended status
        self._hub: FollowHub | None = None
        self._stops: dict[Path, Callable[[], None]] = {}  # hub subscriptions

    @property
    def followed(self) -> bool:
        """True when a hub's followers read the runs (a display tick has nothing to poll)."""
        return self._hub is not None

    def use_hub(self, hub: FollowHub) -> None:
        """Take the runs' deltas from ``hub``'s followers instead of reading tails here
        (call before the first :meth:`set_folders`)."""
        self._hub = hub

    def set_folders(self, folders: Iterable[Path]) -> None:
        """Follow exactly ``folders``: new ones are read at the next poll, others dropped."""
        wanted = list(folders)
        for folder in [f for f in self._feeds if f not in wanted]:
            self._retire(self._feeds.pop(folder))
            self._next.pop(folder, None)
            if folder in self._stops:
                self._stops.pop(folder)()
        for folder in wanted:
            if folder not in self._feeds:
                self._feeds[folder] = RunFeed(folder)
                self._next[folder] = 0.0
                if self._hub is not None:
                    self._subscribe(self._hub, folder)

    def _subscribe(self, hub: FollowHub, folder: Path) -> None:
        already = hub.follower(folder)
        self._stops[folder] = hub.follow(folder, self, partial(self._delta, folder))
        if already is not None:
            # A follower keeps no points for a late subscriber: its next delta reads the
            # run from its start, for everyone (each subscriber starts over on a first one).
            already.restart()

    def _delta(self, folder: Path, delta: Delta) -> None:
        """A follower's delta, on the GUI thread."""
        if folder not in self._stops or delta.replay:
            return  # not followed any more, or a late subscriber's catch-up (no points)
        if delta.error is not None:
            self._on_error(folder, delta.error)
            return
        if delta.batch is None:
            return
        if delta.first:
            self._on_restart(folder)
        self._on_batch(folder, delta.batch)

    def poll(self) -> None:
        """Submit the reads that are due (a read still in flight is not submitted again).
        With a hub, its followers read and there is nothing to do here."""
        if self._hub is not None:
            return
        now = time.monotonic()
        for folder, feed in list(self._feeds.items()):
            if now < self._next[folder]:
                continue
            if feed is None:
                feed = self._feeds[folder] = RunFeed(folder)
                self._on_restart(folder)
            if self._io.submit(
                f"charts-tail-{id(feed)}",
                feed.poll_if_changed,
                partial(self._batch, feed),
                partial(self._error, feed),
            ):
                self._next[folder] = now + POLL_LIVE_S

    def restart(self, folder: Path) -> None:
        """Read ``folder`` again from its start at the next poll (its journal changed)."""
        feed = self._feeds.get(Path(folder))
        if Path(folder) not in self._feeds:
            return
        if self._hub is not None:
            self._retire(feed)  # fresh connections for the viewport reads too
            self._feeds[Path(folder)] = RunFeed(Path(folder))
            follower = self._hub.follower(Path(folder))
            if follower is not None:
                follower.restart()  # its next delta is a first one, for every subscriber
            return
        self._retire(feed)
        self._feeds[Path(folder)] = None
        self._next[Path(folder)] = 0.0

    def request_envelope(
        self,
        folder: Path,
        key: str,
        request: EnvelopeRequest,
        on_result: Callable[[Envelope], None],
        on_error: Callable[[BaseException], None],
    ) -> bool:
        """Read a viewport of ``folder``'s ``key`` on the worker; False if it cannot now."""
        feed = self._feeds.get(Path(folder))
        if feed is None:
            return False
        tag = f"charts-envelope-{id(feed)}-{key}-{request.overview}"
        # Overviews come in bursts (every key of every run opened) while the view thread
        # waits for them to end (exact reads go after): every other one goes to it, so that
        # both threads read (SQLite lets go of the GIL while it steps).
        self._overview_turn ^= request.overview
        on_view = not request.overview or (self._view_io is not self._io and self._overview_turn)
        io = self._view_io if on_view else self._io
        read = partial(feed.envelope, key, request, on_view=on_view)
        return io.submit(tag, read, on_result, on_error)

    def close(self) -> None:
        """Close every reader now. Call after ``io.close()`` (no read is in flight then)."""
        for stop in self._stops.values():
            stop()
        self._stops.clear()
        for feed in [*self._feeds.values(), *self._retired]:
            if feed is not None:
                feed.close()
        self._feeds.clear()
        self._retired.clear()

    def _batch(self, feed: RunFeed, batch: TailBatch | None) -> None:
        if self._feeds.get(feed.folder) is not feed:
            return  # a late answer for a run no longer followed
        if batch is None:  # nothing committed since the last read
            if feed.folder in self._ended:
                self._next[feed.folder] = time.monotonic() + POLL_IDLE_S
            return
        if batch.run.status in FINAL_STATUSES:
            self._ended.add(feed.folder)
            if not batch.n_points:
                self._next[feed.folder] = time.monotonic() + POLL_IDLE_S
        else:
            self._ended.discard(feed.folder)
        self._on_batch(feed.folder, batch)

    def _error(self, feed: RunFeed, exc: BaseException) -> None:
        if self._feeds.get(feed.folder) is not feed:
            return
        log.info("cannot read %s: %s", feed.folder, exc)
        self._retire(feed)
        self._feeds[feed.folder] = None
        self._next[feed.folder] = time.monotonic() + RETRY_S
        self._on_error(feed.folder, str(exc) or type(exc).__name__)

    def _retire(self, feed: RunFeed | None) -> None:
        """Close ``feed`` on the worker, after any read of it still in flight."""
        if feed is None:
            return
        self._retired.add(feed)

        def done(_result: object) -> None:
            self._retired.discard(feed)

        if not self._io.submit(f"charts-close-{id(feed)}", feed.close, done, done):
            feed.close()  # the worker is gone: nothing reads it any more
            self._retired.discard(feed)
