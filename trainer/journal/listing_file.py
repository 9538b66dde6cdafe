"""An ended run's listing kept beside its journal (``listing.json``): a hint, never the truth.

A runs listing of thousands of ended runs spends most of its time opening journals (SQLite's
open, the schema check, a dozen short statements: about 1 ms a run). When the trainer closes
the journal of a run that has ended, the WAL checkpointed and gone, it writes here exactly what
:meth:`JournalReader.listing` returns for it (the run row and heartbeat, each key's newest
visible point, the pause events), with the journal file's size and modification time (ns)
as it left it. A listing then reads this small file instead of the journal, and only when:

* the journal is idle (:func:`db.idle_mark`: nothing in its WAL), so no writer is at work;
* the file is a regular file (never through a symlink, never a FIFO), at most
  :data:`MAX_BYTES`, and parses and type-checks as this module writes it;
* its format is :data:`FORMAT` and it covers the event kinds a listing needs now;
* its size and modification time equal the journal's now, and its run status is an ended one.

Anything else, and the journal is read as usual; nothing reading it ever writes it. The
inode is left out of the mark on purpose: a folder copied with its times (``cp -p``,
``shutil.copytree``) keeps its journal's size and mtime, so it stays fast where it lands.

Every TrainDesk writer removes the file before it changes the journal
(:func:`db.open_writer`, ``writer.annotate``), and only the journal writer's close (or a
supervisor's note, under the run's lock, once checkpointed) writes it again, so a stale hint
can only come from a program that edits the journal outside TrainDesk; that changes the
journal's mtime, so the hint is ignored (a change within one tick of the file system's
clock and of the very same size would not be told apart on kernels without fine-grained
timestamps: Linux 6.13+ gives a changed file a new time once its time was read). The file
is as trusted as the journal beside it: a run folder from elsewhere can say anything in
either, and readers escape what they show of both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

from trainer.errors import TrainDeskError
from trainer.journal.db import discard_listing, idle_mark
from trainer.journal.reader import JournalReader, Listing, RunInfo
from trainer.journal.states import TERMINAL
from trainer.paths import LISTING_NAME

log = logging.getLogger(__name__)

#: Bumped whenever what the file holds changes meaning: an older file is then ignored.
FORMAT = 1
#: A bigger file is never read (nor written): a run's listing with a thousand keys is ~60 KiB.
MAX_BYTES = 256 * 1024

#: Events that end a pause: a resume, or the attempt's end or a new attempt's start.
PAUSE_ENDS = frozenset({"resumed", "started", "restarted", "finished", "stopped", "failed",
                        "crashed"})  # fmt: skip
#: The events a runs listing reads (``trainer.runs.pause_time``), kept in the file.
PAUSE_EVENTS = PAUSE_ENDS | {"paused"}

_EVENTS_OF = sorted(PAUSE_EVENTS)


def write_listing(journal: Path) -> bool:
    """Write the listing file beside ``journal`` if its run has ended and the journal is idle
    (else remove any old one); True if written. Never raises: it is only a hint, and a run's
    end must not fail for it. The journal writer calls it once closed."""
    target = journal.with_name(LISTING_NAME)
    try:
        data = _listing_bytes(journal)
        if data is None:
            discard_listing(journal)
            return False
        _write_private(target, data)
        return True
    except (OSError, sqlite3.Error, TrainDeskError, ValueError, TypeError) as exc:
        log.warning("could not write %s (listings read the journal instead): %s", target, exc)
        with contextlib.suppress(OSError):
            discard_listing(journal)
        return False


def read_listing(journal: Path, mark: tuple[int, int, int]) -> Listing | None:
    """The listing kept beside ``journal`` if it can be trusted for the journal as it is now
    (``mark``: its :func:`db.idle_mark`, taken by the caller); None otherwise."""
    path = journal.with_name(LISTING_NAME)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        data = _read_all(fd, MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        return None
    try:
        return _parse(json.loads(data), mark)
    except (ValueError, TypeError, KeyError, RecursionError):  # not as we write it
        return None


# ---------------------------------------------------------------------------- writing
def _listing_bytes(journal: Path) -> bytes | None:
    """The file's contents for ``journal`` (None: not an idle journal of an ended run, or
    too big). Read as a listing reads it, so the two cannot differ."""
    mark = idle_mark(journal)
    if mark is None:
        return None
    with JournalReader(journal, frozen=True) as reader:
        info, newest, events = reader.listing(PAUSE_EVENTS)
    if idle_mark(journal) != mark or info.status not in TERMINAL:
        return None
    doc = {
        "format": FORMAT,
        "journal": [mark[1], mark[2]],
        "events_of": _EVENTS_OF,
        "run": {f.name: getattr(info, f.name) for f in fields(RunInfo)},
        # A list, not an object: the listing keeps the journal's order of keys.
        "latest": [[key, step, value] for key, (step, value) in newest.items()],
        "events": [[kind, wall] for kind, wall in events],
    }
    # allow_nan: a newest value may be inf or -inf (NaN is stored as NULL: null); Python's
    # json reads these tokens back as the same floats. ASCII only: nothing to mis-decode.
    data = json.dumps(doc, allow_nan=True, separators=(",", ":")).encode("ascii")
    return data if len(data) <= MAX_BYTES else None


def _write_private(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically as 0600, never through a symlink. No fsync:
    a file torn by a power cut does not parse, and is then only ignored."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # the umask may have taken bits from the mode
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, target)  # replaces a symlink itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- reading
def _read_all(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# json.loads makes exact types only (dict, list, str, int, float, bool, None), so a check is
# one set lookup of type(x); bool is not int here, as the journal never gives one.
_STR: frozenset[type] = frozenset({str})
_INT: frozenset[type] = frozenset({int})
_NUMBER: frozenset[type] = frozenset({int, float})
_OPT_STR: frozenset[type] = frozenset({str, type(None)})
_OPT_INT: frozenset[type] = frozenset({int, type(None)})
_OPT_NUMBER: frozenset[type] = frozenset({int, float, type(None)})

#: Each RunInfo field and the types its value may have (as the journal's reader gives them:
#: any other is not a file this module wrote). The status must also be an ended one.
RUN_TYPES: dict[str, frozenset[type]] = {
    "id": _STR, "name": _STR, "entry": _STR, "kind": _STR, "created": _NUMBER,
    "config": frozenset({dict}), "status": _STR, "exit_reason": _OPT_STR, "pid": _OPT_INT,
    "pid_started": _OPT_NUMBER, "host": _STR, "attempt": _INT, "step": _INT,
    "max_steps": _OPT_INT, "updated": _NUMBER, "heartbeat_wall": _OPT_NUMBER,
    "heartbeat_step": _OPT_INT, "last_step_wall": _OPT_NUMBER, "median_step_s": _OPT_NUMBER,
}  # fmt: skip


def _parse(doc: Any, mark: tuple[int, int, int]) -> Listing | None:
    """The listing in ``doc`` if it is one this module wrote for the journal of ``mark``."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    size_mtime = doc.get("journal")
    if type(size_mtime) is not list or [type(x) for x in size_mtime] != [int, int]:
        return None
    if tuple(size_mtime) != mark[1:]:
        return None
    if doc.get("events_of") != _EVENTS_OF:
        return None
    run = doc["run"]
    if type(run) is not dict or run.keys() != RUN_TYPES.keys():
        return None
    for name, types in RUN_TYPES.items():
        if type(run[name]) not in types:
            return None
    if run["status"] not in TERMINAL:
        return None
    latest, events_in = doc["latest"], doc["events"]
    if type(latest) is not list or type(events_in) is not list:
        return None
    newest: dict[str, tuple[int, float]] = {}
    for key, step, value in latest:
        # NaN is stored as NULL: a newest value may be None.
        if type(key) is not str or type(step) is not int or type(value) not in _OPT_NUMBER:
            return None
        if key in newest:
            return None
        newest[key] = (step, value)
    events: list[tuple[str, float]] = []
    for kind, wall in events_in:
        if type(kind) is not str or kind not in PAUSE_EVENTS or type(wall) not in _NUMBER:
            return None
        events.append((kind, wall))
    return RunInfo(**run), newest, events
