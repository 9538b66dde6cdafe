"""SIGTERM, SIGINT and SIGHUP close the app through the same async path as its window.

A Python signal handler only runs when the interpreter gets control, which Qt's event loop
does not give it on its own. On Unix, qasync's loop is an asyncio selector loop:
``loop.add_signal_handler`` writes the signal number to a wake-up socket that Qt watches
(a QSocketNotifier), so the handler runs at once on the loop, however idle the app is.
Where that is not available (Windows), a plain ``signal.signal`` handler hands over to the
loop, and a short no-op QTimer gives the interpreter control a few times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from types import FrameType

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

#: How often the fallback timer lets Python run its signal handlers (ms).
WAKE_MS = 200


def quit_signals() -> list[signal.Signals]:
    """The signals that close the app: SIGTERM, SIGINT and, where it exists, SIGHUP."""
    names = ("SIGTERM", "SIGINT", "SIGHUP")
    return [getattr(signal, n) for n in names if hasattr(signal, n)]


class QuitSignals(QObject):
    """Calls ``on_signal(name)`` on the event loop for each quit signal, until :meth:`remove`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_signal: Callable[[str], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loop = loop
        self._on_signal = on_signal
        self._via_loop: list[signal.Signals] = []
        self._saved: dict[signal.Signals, object] = {}
        self._timer: QTimer | None = None
        # asyncio's remove_signal_handler puts back SIG_DFL, not what was there (SIGHUP is
        # ignored under nohup): keep it to restore.
        self._before: dict[signal.Signals, object] = {}
        for sig in quit_signals():
            try:
                self._before[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, on_signal, sig.name)
                self._via_loop.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                self._saved[sig] = signal.signal(sig, self._handler)
        if self._saved:
            self._timer = QTimer(self)
            self._timer.timeout.connect(lambda: None)  # Python runs pending handlers here
            self._timer.start(WAKE_MS)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self._loop.call_soon_threadsafe(self._on_signal, name)

    def remove(self) -> None:
        """Give the signals back their earlier handlers."""
        for sig in self._via_loop:
            with contextlib.suppress(RuntimeError, ValueError):
                self._loop.remove_signal_handler(sig)
                previous = self._before.get(sig)
                if previous is not None:
                    signal.signal(sig, previous)  # type: ignore[arg-type]
        self._via_loop.clear()
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._saved.clear()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
