"""The app's journal followers: one :class:`~trainer.journal.follower.Follower` per open run.

Every part of the app that shows a run (health, system samples, the charts) asks the hub to
:meth:`FollowHub.follow` it with a subscriber. On each tick the hub submits one job to the
journal worker (:class:`~desktop_app.background.BackgroundIO`) that polls every follower
(``PRAGMA data_version`` first: a run nobody writes is not read) and hands each change back on
the GUI thread, the same delta to every subscriber of that run. No journal is read on the GUI
thread. A run's follower is closed, on the worker, once its last owner lets go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from desktop_app.background import BackgroundIO
from trainer.journal.follower import Delta, Follower, Followers, Subscriber

log = logging.getLogger(__name__)

#: The tick on which every follower is polled (a change reaches the screen within it).
TICK_MS = 250
_POLL_TAG = "follow-poll"


class FollowHub(QObject):
    """Followers shared by the app's panels, polled on one timer."""

    def __init__(
        self, io: BackgroundIO, parent: QObject | None = None, *, interval_ms: int = TICK_MS
    ) -> None:
        super().__init__(parent)
        self._io = io
        self.followers = Followers()
        self._shut_down = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    def follow(self, folder: Path, owner: object, subscriber: Subscriber) -> Callable[[], None]:
        """Hand ``folder``'s deltas to ``subscriber`` (first what is known of it so far, if
        the run is followed already); returns the function that stops it (idempotent)."""
        follower = self.followers.follow(Path(folder), owner)
        unsubscribe = follower.subscribe(subscriber)
        done = False

        def stop() -> None:
            nonlocal done
            if done:
                return
            done = True
            unsubscribe()
            self.followers.unfollow(Path(folder), owner)

        if self._timer.isActive():
            QTimer.singleShot(0, self.tick)  # read a new run now, not a tick later
        return stop

    def follower(self, folder: Path) -> Follower | None:
        return self.followers.get(Path(folder))

    def tick(self) -> None:
        """Poll every follower on the journal worker (skipped while a poll is in flight)."""
        if self._shut_down or not (len(self.followers) or self.followers.has_retired):
            return  # nothing to poll, nothing to close
        job = partial(self.followers.poll_all, self.followers.followers())
        self._io.submit(_POLL_TAG, job, self._publish, self._failed)

    def shutdown(self) -> None:
        """Stop polling and close every follower. Call after ``io.close()``; idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self._timer.stop()
        self.followers.close()

    def _publish(self, results: list[tuple[Follower, Delta]]) -> None:
        if self._shut_down:
            return
        for follower, delta in results:
            follower.publish(delta)

    def _failed(self, exc: BaseException) -> None:
        log.warning("cannot poll the followed runs: %s", exc)
