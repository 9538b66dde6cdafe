"""Expected failures, each with a one-line message that names the problem and the fix.

The CLI prints ``error: <message>`` and exits with the error's ``exit_code``; no traceback is
shown for these. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TrainDeskError(Exception):
    """Base of every expected, user-facing failure."""

    exit_code = 2


class UsageError(TrainDeskError):
    """Bad command-line input: an unknown recipe, a bad name, a missing script."""

    exit_code = 2


class ConfigError(TrainDeskError):
    """A training config that does not validate."""

    exit_code = 2


class RunNotFoundError(TrainDeskError):
    """A RUN argument that names no run (or more than one)."""

    exit_code = 3


class JournalError(TrainDeskError):
    """A journal that cannot be opened: not SQLite, damaged, too new, or read-only."""

    exit_code = 3


class DiskFullError(TrainDeskError):
    """The disk (or a file-size limit) stopped a write; everything committed before is kept."""

    exit_code = 4


class ScriptError(TrainDeskError):
    """A user's script that does not exist or fails on import."""

    exit_code = 2


def disk_full_cause(exc: BaseException) -> BaseException | None:
    """The error in ``exc``'s chain that says the disk (or a quota, or a file-size limit) is
    full, or None."""
    import errno

    numbers = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return current
        if isinstance(current, OSError) and current.errno in numbers:
            return current
        text = str(current).lower()
        if "disk is full" in text or "no space left" in text or "file too large" in text:
            return current
        current = current.__cause__ or current.__context__
    return None


def disk_full(what: str, exc: BaseException) -> DiskFullError:
    """The one message for a full disk, wherever it struck (journal, checkpoint, logs)."""
    if isinstance(exc, DiskFullError):
        return exc
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return DiskFullError(
        f"{what} could not be written ({detail}): the disk is full; free some disk space, then "
        "`trainer resume` the run (everything committed before is kept)"
    )
