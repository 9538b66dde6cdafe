"""Status is derived, never trusted blindly: "running" needs a live process and a fresh heartbeat.

A journal that says "running" while its process is gone (killed, crashed, the machine
rebooted) is shown as "crashed", whoever reads it. A live run whose heartbeat is stale is
"unresponsive"; one that beats but makes no step progress for much longer than its usual
pace is "stalled" (shown, never killed for it).
"""

from __future__ import annotations

import socket
import time

from trainer.journal.reader import RunInfo
from trainer.journal.states import LIVE, TERMINAL

__all__ = [
    "ALIVE",
    "ALL",
    "HEALTH",
    "LIVE",
    "TERMINAL",
    "derive_status",
    "process_alive",
    "process_start_time",
]

ALL = LIVE | TERMINAL
#: Derived statuses that are not lifecycle states: a live run's health.
HEALTH = frozenset({"unresponsive", "stalled"})
#: Derived statuses of a run whose process is (as far as we can tell) still there.
ALIVE = LIVE | HEALTH

#: Seconds without a heartbeat before a live run counts as unresponsive (or, off this host,
#: as crashed).
HEARTBEAT_TIMEOUT = 10.0
#: No step for this many times the median step time (and at least STALL_MIN seconds): stalled.
STALL_FACTOR = 10.0
STALL_MIN = 60.0


def process_start_time(pid: int | None = None) -> float | None:
    """When ``pid`` (default: this process) started, as psutil tells it; None if unknown."""
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


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


def derive_status(
    info: RunInfo,
    *,
    now: float | None = None,
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    stall_factor: float = STALL_FACTOR,
    stall_min: float = STALL_MIN,
) -> str:
    """The status to show: the journal's, corrected by the process and its heartbeat.

    Returns one of the statuses in ``ALL``, "unresponsive" (alive, heartbeat stale) or
    "stalled" (running and beating, but no new step for too long).
    """
    if info.status not in LIVE:
        return info.status
    if info.status == "queued":  # waiting for GPUs: no heartbeat yet, but a live process
        local = info.host == socket.gethostname()
        return "crashed" if local and not process_alive(info.pid, info.pid_started) else "queued"
    now = time.time() if now is None else now
    last_beat = info.heartbeat_wall if info.heartbeat_wall is not None else info.updated
    fresh = now - last_beat <= heartbeat_timeout
    if info.host == socket.gethostname():
        if not process_alive(info.pid, info.pid_started):
            return "crashed"
    elif not fresh:
        # Another machine's run (a copied folder, a shared disk): only the heartbeat can tell.
        return "crashed"
    if not fresh:
        return "unresponsive"
    if info.status == "running" and is_stalled(info, now, stall_factor, stall_min):
        return "stalled"
    return info.status


def is_stalled(info: RunInfo, now: float, factor: float, minimum: float) -> bool:
    """True if the run's newest step is older than ``factor`` x its median step time."""
    if info.last_step_wall is None or info.median_step_s is None:
        return False
    return now - info.last_step_wall > max(factor * info.median_step_s, minimum)
