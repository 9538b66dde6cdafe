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
