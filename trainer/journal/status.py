"""Status is derived, never trusted blindly: "running" needs a live process and a fresh heartbeat.

A journal that says "running" while its process is gone (killed, crashed, the machine
rebooted) is shown as "crashed", whoever reads it.
"""

from __future__ import annotations

import socket
import time

from trainer.journal.reader import RunInfo

LIVE = frozenset({"queued", "starting", "running", "paused", "stopping"})
TERMINAL = frozenset({"finished", "stopped", "failed", "crashed"})
ALL = LIVE | TERMINAL

#: Seconds without a heartbeat before a live run counts as unresponsive (or, off this host,
#: as crashed).
HEARTBEAT_TIMEOUT = 10.0


def process_alive(pid: int | None, started: float | None) -> bool:
    """True if ``pid`` runs and is the same process that started at ``started``."""
    if not pid:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


def derive_status(info: RunInfo, *, now: float | None = None) -> str:
    """The status to show: the journal's, corrected by the process and its heartbeat.

    Returns one of the statuses in ``ALL`` or "unresponsive" (alive, heartbeat stale).
    """
    if info.status not in LIVE or info.status == "queued":
        return info.status
    now = time.time() if now is None else now
    last_beat = info.heartbeat_wall if info.heartbeat_wall is not None else info.updated
    fresh = now - last_beat <= HEARTBEAT_TIMEOUT
    if info.host == socket.gethostname():
        if not process_alive(info.pid, info.pid_started):
            return "crashed"
        return info.status if fresh else "unresponsive"
    # Another machine's run (a copied folder, a shared disk): only the heartbeat can tell.
    return info.status if fresh else "crashed"
