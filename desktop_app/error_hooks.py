"""Errors that would otherwise vanish: exceptions in Qt slots and in asyncio tasks.

Qt slots report to ``sys.excepthook``; asyncio reports to the loop's exception handler (and a
fire-and-forget task only when it is garbage-collected). :class:`ErrorHooks` logs both and
shows them through a callback (the main window's status bar).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger("desktop_app")

ShowError = Callable[[str], None]


class ErrorHooks:
    """Installs ``sys.excepthook`` and a loop exception handler; :meth:`uninstall` restores."""

    def __init__(self, show: ShowError | None = None) -> None:
        self.show = show
        self.count = 0
        self._old_hook = sys.excepthook
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        sys.excepthook = self._excepthook
        if loop is not None:
            self._loop = loop
            loop.set_exception_handler(self._loop_handler)

    def uninstall(self) -> None:
        sys.excepthook = self._old_hook
        if self._loop is not None:
            self._loop.set_exception_handler(None)
            self._loop = None

    def report(self, message: str, exc: BaseException | None = None) -> None:
        """Log an error with its traceback and show it."""
        self.count += 1
        text = message
        if exc is not None:
            text += "\n" + "".join(traceback.format_exception(exc))
        log.error("%s", text)
        if self.show is not None:
            try:
                self.show(text)
            except Exception:  # showing must never raise into Qt or asyncio
                log.exception("could not show an error")

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Report ``task``'s exception as soon as it ends with one."""
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.report(f"task {task.get_name()} failed", task.exception())

    def _excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._old_hook(exc_type, exc, tb)
            return
        self.report("unexpected error", exc.with_traceback(tb))

    def _loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.report(
            str(context.get("message", "error in the event loop")), context.get("exception")
        )
