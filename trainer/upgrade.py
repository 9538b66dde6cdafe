"""Bringing an ended run's journal up to the current schema, outside any attempt.

A journal written by an older TrainDesk opens as it is; :func:`upgrade_journal` migrates it
(``schema.MIGRATIONS``) and builds its summaries, holding the run's lock all the while, so
it is the journal's one writer: a resume meanwhile is told who holds the run, and a live run
is left alone. The app calls it in the background for a run it opens; nothing is lost if
it is interrupted (each chunk commits on its own, and the next upgrade goes on).
"""

from __future__ import annotations

import logging
from pathlib import Path

from trainer.journal import db as jdb
from trainer.journal.writer import complete_summaries
from trainer.paths import JOURNAL_NAME
from trainer.runlock import RunLock

log = logging.getLogger(__name__)


def upgrade_journal(folder: Path) -> bool:
    """Migrate ``folder``'s journal and build its summaries; True if anything changed.

    Raises :class:`trainer.runlock.RunBusyError` while an attempt holds the run, and
    :class:`trainer.errors.JournalError` for a journal that cannot be written.
    """
    lock = RunLock.acquire(folder, role="upgrade")
    try:
        database = jdb.open_writer(folder / JOURNAL_NAME)  # migrates the schema
        try:
            built = complete_summaries(database.connection())
        finally:
            database.close()
    finally:
        lock.release()
    if built:
        log.info("run %s: journal upgraded, summaries built", folder.name)
    return built
