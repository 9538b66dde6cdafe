"""Poll a journal as fast as possible until its run ends; print counts as JSON.

Usage: poll_reader.py RUN_FOLDER SECONDS_MAX
"""

import contextlib
import json
import os
import sqlite3
import sys
import time

from trainer.errors import JournalError
from trainer.journal import JournalReader
from trainer.journal.status import TERMINAL

folder, limit = sys.argv[1], float(sys.argv[2])
journal = os.path.join(folder, "journal.sqlite")
deadline = time.monotonic() + limit
while not os.path.exists(journal) and time.monotonic() < deadline:
    time.sleep(0.01)
reader = None
polls = points = locked = other = 0
max_wal = 0
errors: list[str] = []
while time.monotonic() < deadline:
    try:
        if reader is None:
            reader = JournalReader(folder)
        batch = reader.tail()
        points += batch.n_points
        polls += 1
        if batch.run.status in TERMINAL:
            batch = reader.tail()
            points += batch.n_points
            break
    except (sqlite3.Error, JournalError) as exc:
        text = str(exc)
        if "database is locked" in text or "database is busy" in text:
            locked += 1
        else:
            other += 1
        errors.append(text)
    with contextlib.suppress(FileNotFoundError):
        max_wal = max(max_wal, os.path.getsize(journal + "-wal"))
print(
    json.dumps(
        {
            "polls": polls,
            "points": points,
            "locked": locked,
            "other": other,
            "max_wal": max_wal,
            "errors": errors[:5],
        }
    )
)
