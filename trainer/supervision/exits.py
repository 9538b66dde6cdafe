"""Why an attempt ended, told from its exit code, its journal and its memory history."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

from trainer.supervision.lifecycle import CRASHED, FAILED, FINISHED, PAUSED, STOPPED

#: Exit codes of the trainer (see ``trainer --help``).
EXIT_TRAINING_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_DISK_FULL = 4
#: Another attempt (or supervisor) holds the run folder's lock: nothing was written.
EXIT_BUSY = 5
EXIT_INTERRUPTED = 130

#: Host memory in use (fraction) at or above which a SIGKILL is put down to the OOM killer.
OOM_HOST_USED = 0.9

_OOM_TEXT = ("outofmemoryerror", "out of memory", "cuda error: out of memory", "memoryerror")


class ExitKind(StrEnum):
    FINISHED = "finished"
    STOPPED = "stopped by the user"
    USAGE = "configuration or usage error"
    TRAINING_ERROR = "training error"
    OOM = "out of memory"
    KILLED = "killed by a signal"
    HUNG = "hung"
    DISK_FULL = "disk full"
    BUSY = "run in use by another process"


@dataclass(frozen=True)
class ExitClass:
    """An attempt's end: its kind, the state the run goes to, and whether to restart."""

    kind: ExitKind
    state: str  # finished | stopped | failed | crashed | paused (waiting for disk space)
    reason: str
    restartable: bool

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind.name.lower(), "state": self.state, "reason": self.reason,
                "restartable": self.restartable}  # fmt: skip


@dataclass(frozen=True)
class MemoryFacts:
    """The newest memory figures seen while the attempt ran (None: not known)."""

    host_used_fraction: float | None = None
    rss: int | None = None
    oom_kills: int = 0  # the cgroup's OOM-kill counter grew while the attempt ran


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify_exit(
    returncode: int,
    *,
    stop_requested: bool = False,
    hung: bool = False,
    journal_status: str | None = None,
    error: str | None = None,
    memory: MemoryFacts | None = None,
) -> ExitClass:
    """Classify an attempt's end.

    ``returncode`` as subprocess gives it (-N: killed by signal N; a shell's 128+N is read
    the same way). ``journal_status`` and ``error`` are what the attempt journaled (its
    final status, and the message of its last error event).
    """
    if returncode > 128 and returncode != EXIT_INTERRUPTED:
        returncode = -(returncode - 128)
    if journal_status == FINISHED and returncode not in (0, EXIT_BUSY):
        # The attempt journaled its end: a kill, a hang or an error in its teardown after
        # that leaves a finished run (a restart would only be refused: nothing is left to do).
        how = "hung (killed)" if hung else (
            f"killed by {signal_name(-returncode)}" if returncode < 0 else f"exit code {returncode}"
        )  # fmt: skip
        return ExitClass(ExitKind.FINISHED, FINISHED, f"{how} after it journaled its end", False)
    if hung:
        return ExitClass(ExitKind.HUNG, CRASHED, "no heartbeat: killed as hung", True)
    if returncode == 0:
        if stop_requested or journal_status == STOPPED:
            return ExitClass(ExitKind.STOPPED, STOPPED, "stopped by the user", False)
        return ExitClass(ExitKind.FINISHED, FINISHED, "finished", False)
    if returncode == EXIT_INTERRUPTED or (returncode < 0 and stop_requested):
        return ExitClass(ExitKind.STOPPED, STOPPED, "stopped by the user", False)
    if returncode == EXIT_BUSY:
        # The other holder is the journal's writer: the attempt that found it busy left no
        # trace, and nothing about it may be written there.
        return ExitClass(ExitKind.BUSY, FAILED, "the run is in use by another process", False)
    if returncode in (EXIT_USAGE, EXIT_NOT_FOUND):
        reason = error or f"exit code {returncode}"
        return ExitClass(ExitKind.USAGE, FAILED, reason, False)
    if returncode == EXIT_DISK_FULL:
        reason = error or "the disk is full"
        return ExitClass(ExitKind.DISK_FULL, PAUSED, reason, True)
    if returncode < 0:
        number = -returncode
        if number == signal.SIGKILL and _oom_killed(memory):
            return ExitClass(
                ExitKind.OOM, CRASHED, "killed by the kernel's OOM killer (SIGKILL with memory "
                "exhausted)", True,
            )  # fmt: skip
        return ExitClass(ExitKind.KILLED, CRASHED, f"killed by {signal_name(number)}", True)
    reason = error or f"exit code {returncode}"
    if error and any(text in error.lower() for text in _OOM_TEXT):
        return ExitClass(ExitKind.OOM, FAILED, reason, True)
    return ExitClass(ExitKind.TRAINING_ERROR, FAILED, reason, True)


def _oom_killed(memory: MemoryFacts | None) -> bool:
    if memory is None:
        return False
    if memory.oom_kills > 0:
        return True
    return memory.host_used_fraction is not None and memory.host_used_fraction >= OOM_HOST_USED
