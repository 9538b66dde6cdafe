"""Blocking reads off the GUI thread: one worker thread, results delivered back on the GUI thread.

Every job has a tag; a tag with a job in flight is not submitted again, so a slow disk makes
the app poll less often instead of queueing work. The single worker also serialises all access
to the journal readers, which are not thread-safe.

The app has a second one, ``traindesk-tasks`` with two workers, for slow jobs that hold no
reader: the lease store and the GPU inventory (NVML can take seconds to start), the app's own
figures, the diagnostics. A slow job there never delays a chart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundIO(QObject):
    """Runs jobs on one worker thread and calls their callbacks on the GUI thread."""

    # Emitted from the worker thread; the queued connection delivers it on the GUI thread.
    _finished = Signal(object)

    def __init__(
        self, parent: QObject | None = None, *, name: str = "traindesk-io", workers: int = 1
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._in_flight: set[str] = set()
        self._closed = False
        self._finished.connect(self._deliver)

    def busy(self, tag: str) -> bool:
        return tag in self._in_flight

    def submit(
        self,
        tag: str,
        job: Callable[[], T],
        on_result: Callable[[T], None],
        on_error: Callable[[BaseException], None],
    ) -> bool:
        """Run ``job`` on the worker unless ``tag`` is in flight; False if not submitted."""
        if self._closed or tag in self._in_flight:
            return False
        self._in_flight.add(tag)
        future = self._pool.submit(job)
        future.add_done_callback(lambda fut: self._finished.emit((tag, fut, on_result, on_error)))
        return True

    def _deliver(self, item: tuple[str, Future[Any], Callable[[Any], None], Any]) -> None:
        tag, future, on_result, on_error = item
        self._in_flight.discard(tag)
        if self._closed or future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            on_error(exc)
        else:
            on_result(future.result())

    def close(self, wait: bool = True) -> None:
        """Cancel queued jobs and wait for the running ones (unless ``wait`` is False: they
        then finish on their own); later results are dropped."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
