"""A key's points in chunks, for exports of any length in constant memory.

:func:`iter_series` reads a key's points ``chunk`` rows at a time, each chunk in its own short
read transaction of the reader (so a long export pins no WAL snapshot), in (attempt, step)
order, superseded points hidden unless asked for, exactly as
:meth:`~trainer.journal.reader.JournalReader.series` returns them whole.
"""

from __future__ import annotations

from collections.abc import Iterator

from trainer.journal import reader as jr

#: Rows read per chunk (about 3 MB of numpy arrays).
CHUNK = 65_536
#: (attempt, step) of a point.
Position = tuple[int, int]
#: What one pass over a key may see: its points up to this position, superseded by the
#: attempts up to this number (see :func:`pin`).
Pin = tuple[Position, int]


def pin(reader: jr.JournalReader, key: str) -> Pin | None:
    """``key``'s newest point (visible or not) and the run's newest attempt now; None when
    the key has no point. Several passes pinned to it see the same points, even if live."""
    with reader._read() as conn:
        key_id = reader._key_id(conn, key)
        if key_id is None:
            return None
        row = conn.execute(
            "SELECT attempt, step FROM scalar WHERE key_id = ? "
            "ORDER BY attempt DESC, step DESC LIMIT 1",
            (key_id,),
        ).fetchone()
        last = conn.execute("SELECT MAX(attempt) FROM attempt").fetchone()[0]
    if row is None:
        return None
    return (int(row[0]), int(row[1])), int(last or row[0])


def iter_series(
    reader: jr.JournalReader,
    key: str,
    *,
    include_superseded: bool = False,
    chunk: int | None = None,
    until: Pin | None = None,
) -> Iterator[jr.Series]:
    """``key``'s points as consecutive non-empty :class:`Series` of at most ``chunk`` rows
    (default :data:`CHUNK`).

    ``until``: only the points and attempts a :func:`pin` saw: several passes over a live
    run then see the same points."""
    chunk = chunk or CHUNK
    position = (0, -(2**62))
    end, last_attempt = until if until is not None else ((2**62, 2**62), 2**62)
    while True:
        with reader._read() as conn:
            created = reader._created_at(conn)
            key_id = reader._key_id(conn, key)
            if key_id is None:
                return
            points = jr._fetch_points(
                conn,
                "SELECT attempt, step, value, wall_ms FROM scalar "
                "WHERE key_id = ? AND (attempt, step) > (?, ?) AND (attempt, step) <= (?, ?) "
                "ORDER BY attempt, step LIMIT ?",
                (key_id, *position, *end, chunk),
            )
            fetched = len(points)
            if not fetched:
                return
            last = points[-1]
            position = (int(last["attempt"]), int(last["step"]))
            if not include_superseded:
                starts = reader._attempt_starts(conn)
                cutoffs = jr._cutoffs({a: s for a, s in starts.items() if a <= last_attempt})
                if cutoffs:
                    points = points[jr._visible(points, cutoffs)]
            series = None
            if len(points):
                jr._fill_step_walls(conn, points)
                series = jr.Series._from_points(points, created, None)
        if series is not None:
            yield series
        if fetched < chunk:
            return
