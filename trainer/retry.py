"""Transient failures, tried again with exponential backoff (tenacity) and logged with context.

A transient failure is one that a moment later may not happen again: SQLite's "database is
locked" when another program held the file past the busy timeout, a file that Windows (or a
virus scanner) still holds open, an NVML call that timed out. :func:`transient` gives the one
policy for all of them: a few tries, waits doubling from ``first_wait`` up to ``max_wait``,
each retry logged at WARNING (what was tried, the attempt, the error), then the last error
re-raised as it was, for the caller to report as it always did.

Qt-free and torch-free: both programs use it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

import tenacity

log = logging.getLogger(__name__)

#: SQLite's primary result codes SQLITE_BUSY and SQLITE_LOCKED (extended codes keep them in
#: their low byte: SQLITE_BUSY_RECOVERY is 261).
_SQLITE_BUSY_CODES = (5, 6)

ErrorTypes = type[BaseException] | tuple[type[BaseException], ...]


def transient(
    what: str,
    *,
    attempts: int = 5,
    first_wait: float = 0.05,
    max_wait: float = 2.0,
    retry_on: ErrorTypes = (OSError,),
    when: Callable[[BaseException], bool] | None = None,
    logger: logging.Logger | None = None,
) -> tenacity.Retrying:
    """A retrier for ``what`` (words for the log: "reading the journal /x/journal.sqlite").

    It makes up to ``attempts`` tries, waiting ``first_wait`` seconds after the first failure
    and twice as long after each next one (at most ``max_wait``). Only errors of ``retry_on``
    for which ``when(error)`` is true (if given) are tried again; any other error, and the
    last one, propagate unchanged. Call it with the function and its arguments,
    ``transient("...")(fn, *args)``, or decorate: ``@transient("...").wraps``.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    out = logger or log

    def worth_retrying(exc: BaseException) -> bool:
        return isinstance(exc, retry_on) and (when is None or when(exc))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        out.warning(
            "%s: attempt %d of %d failed (%s: %s); trying again in %.2f s",
            what,
            state.attempt_number,
            attempts,
            type(exc).__name__,
            exc,
            wait,
        )

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=first_wait, max=max_wait),
        retry=tenacity.retry_if_exception(worth_retrying),
        before_sleep=before_sleep,
        reraise=True,
    )


def sqlite_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_BUSY or SQLITE_LOCKED ("database is locked", ...).

    Goes by the error code where sqlite3 gives one, else by the message (peewee's
    OperationalError copies the message but not the code).
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in _SQLITE_BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def sqlite_transient(
    what: str,
    *,
    errors: tuple[type[BaseException], ...] = (),
    attempts: int = 5,
    first_wait: float = 0.05,
    max_wait: float = 2.0,
    logger: logging.Logger | None = None,
) -> tenacity.Retrying:
    """:func:`transient` for SQLite's "database is locked"/"busy": sqlite3.OperationalError
    and ``errors`` (e.g. peewee's OperationalError) that :func:`sqlite_busy` accepts."""
    return transient(
        what,
        attempts=attempts,
        first_wait=first_wait,
        max_wait=max_wait,
        retry_on=(sqlite3.OperationalError, *errors),
        when=sqlite_busy,
        logger=logger,
    )
