"""Opening a journal: the one door to its SQLite file, for the writer and for readers.

The trainer is a journal's only writer. Readers open it read-only (``mode=ro``), never write
or checkpoint it, and keep no transaction open between reads, so they never pin a WAL
snapshot and never cause "database is locked".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import peewee as pw

from trainer.errors import JournalError
from trainer.journal import schema
from trainer.paths import LISTING_NAME
from trainer.retry import sqlite_busy, sqlite_transient

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
#: A reader waits this long inside SQLite for a lock, then its transient retry (logged, with
#: backoff) tries again: about 6 s in all before it gives up, instead of one silent wait.
READER_BUSY_TIMEOUT_MS = 1_000
WRITER_PRAGMAS = {
    "journal_mode": "wal",
    # NORMAL loses nothing on a process crash in WAL mode; only power loss may drop the
    # newest commits. The writer commits every 50 ms, so that is the most at risk.
    "synchronous": "normal",
    "busy_timeout": BUSY_TIMEOUT_MS,
    # Checkpoints do not shrink the WAL; this truncates it back after each checkpoint.
    "journal_size_limit": 16 * 1024 * 1024,
    "foreign_keys": 0,
}


def check_sqlite_file(path: Path) -> None:
    """Raise JournalError unless ``path`` is an existing file that starts like SQLite."""
    if not path.exists():
        raise JournalError(f"{path} does not exist: check the run folder's path")
    if not path.is_file():
        raise JournalError(f"{path} is not a file: a run's journal is its journal.sqlite")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except PermissionError as exc:
        raise JournalError(f"{path} cannot be read ({exc.strerror}): fix its permissions") from exc
    if head != SQLITE_MAGIC:
        raise JournalError(
            f"{path} is not an SQLite journal (wrong header): it was not written by TrainDesk "
            "or is damaged; it is left untouched"
        )


def schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The journal's schema version; JournalError if it is damaged or too new."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        if sqlite_busy(exc):
            raise  # not damage: the caller's retry tries again
        raise damaged(path, exc) from exc
    if row is None:
        raise JournalError(f"{path} has no schema version: it is not a TrainDesk journal")
    version = int(row[0])
    if version > schema.SCHEMA_VERSION:
        raise JournalError(
            f"{path} uses journal schema v{version}, newer than this TrainDesk's "
            f"v{schema.SCHEMA_VERSION}: upgrade TrainDesk to open it"
        )
    return version


def damaged(path: Path, exc: BaseException) -> JournalError:
    """The JournalError for a file SQLite refuses to read."""
    return JournalError(
        f"{path} is damaged or truncated ({exc}): it is left untouched; "
        "restore it from a copy or remove the run"
    )


def locked(path: Path, exc: BaseException) -> JournalError:
    """The JournalError for a journal that another program kept locked through every retry."""
    return JournalError(
        f"{path} stayed locked by another program ({exc}): try again once it lets go; "
        "nothing was changed"
    )


def idle_mark(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime ns) of a journal whose WAL is absent or empty: every committed
    change is in the file itself, which no reader then needs to lock to read. None when the
    WAL holds commits (or the file is gone)."""
    try:
        wal = os.stat(f"{path}-wal")
        if wal.st_size:
            return None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def discard_listing(journal: Path) -> None:
    """Remove the listing file beside ``journal`` (``listing_file``; a symlink itself, never
    its target). Every writer does before it opens the journal: the journal is about to
    change, and the hint must not outlive what it describes even for a moment."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal.with_name(LISTING_NAME))


def connect_frozen(path: Path) -> sqlite3.Connection:
    """A connection that reads ``path`` as a frozen file (SQLite's immutable=1: no locks, no
    -shm), for one quick read of a journal :func:`idle_mark` found idle. The caller checks
    the mark again after its read, and reads the usual way if it changed."""
    check_sqlite_file(path)
    try:
        return _open_reader(path, frozen=True)
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc) from exc


def connect_reader(path: Path) -> sqlite3.Connection:
    """A read-only connection in autocommit mode: each statement is its own short read.

    "database is locked" while opening (another program holds the file in exclusive mode, or
    recovers its WAL) is tried again with backoff, then raised as a JournalError.
    """
    check_sqlite_file(path)
    try:
        return sqlite_transient(f"opening the journal {path}")(_open_reader, path)
    except sqlite3.OperationalError as exc:
        raise locked(path, exc) from exc


def _open_reader(path: Path, *, frozen: bool = False) -> sqlite3.Connection:
    uri = path.resolve().as_uri()
    if frozen:
        conn = _connect_immutable(uri)
        _check_schema(conn, path)
        return conn
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {READER_BUSY_TIMEOUT_MS}")
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError as exc:
        conn.close()
        if sqlite_busy(exc):
            raise
        # A WAL journal in a folder we cannot write (no -shm to create) cannot be opened for
        # shared reads; immutable=1 reads it as the frozen file it then is.
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise damaged(path, exc) from exc
        conn = _connect_immutable(uri)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise damaged(path, exc) from exc
    _check_schema(conn, path)
    return conn


def _connect_immutable(uri: str) -> sqlite3.Connection:
    """The journal at ``uri`` read as a frozen file: no locks, no -shm."""
    return sqlite3.connect(
        f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Close ``conn`` and raise if the journal's schema cannot be read here."""
    try:
        schema_version(conn, path)
    except (JournalError, sqlite3.OperationalError):
        conn.close()
        raise


def create_journal(path: Path, init: Callable[[sqlite3.Connection], None]) -> None:
    """Create a journal atomically: schema and first rows go into a temporary file that is
    renamed into place, so a reader never finds a half-made journal."""
    if path.exists():
        raise JournalError(f"{path} already exists: a new run needs a new run folder")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.creating")
    db = pw.SqliteDatabase(str(tmp), pragmas={**WRITER_PRAGMAS, "journal_mode": "delete"})
    try:
        db.connect()
        tmp.chmod(0o600)
        schema.create_schema(db)
        with db.atomic():
            init(db.connection())
        db.execute_sql("PRAGMA journal_mode = wal")  # persistent: the file is WAL from now on
        db.close()
        os.replace(tmp, path)
    except BaseException:
        db.close()
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
        raise


def open_writer(path: Path, *, create: bool = False) -> pw.SqliteDatabase:
    """Open the journal for its one writer, migrating an older schema."""
    if not create:
        check_sqlite_file(path)
        if not _writable(path):
            raise JournalError(
                f"{path} is read-only: give yourself write access (chmod u+w) to resume the run"
            )
    with contextlib.suppress(OSError):  # a folder that refuses it refuses the journal too
        discard_listing(path)
    retrying = sqlite_transient(
        f"opening the journal {path} to write", errors=(pw.OperationalError,)
    )
    try:
        return retrying(_open_writer, path)
    except (sqlite3.DatabaseError, pw.DatabaseError) as exc:
        raise (locked if sqlite_busy(exc) else damaged)(path, exc) from exc


def _open_writer(path: Path) -> pw.SqliteDatabase:
    db = pw.SqliteDatabase(str(path), pragmas=WRITER_PRAGMAS, check_same_thread=False)
    try:
        db.connect()
        version = schema_version(db.connection(), path)
        if version < schema.SCHEMA_VERSION:
            schema.migrate(db, version)
    except BaseException:
        db.close()
        raise
    return db


def _writable(path: Path) -> bool:
    """Really try: os.access says yes to root even for an immutable file."""
    import os

    try:
        os.close(os.open(path, os.O_RDWR))
    except OSError:
        return False
    probe = path.parent / f".write-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError:
        return False
    return True
