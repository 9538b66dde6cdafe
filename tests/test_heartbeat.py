"""The heartbeat rides along with commits of points; a run that stops logging still beats.

A watching app reads the journal once per commit (``PRAGMA data_version``), so these tests
count commits the way it sees them: a separate read-only connection, polled.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import wait_until
from trainer.api import HEARTBEAT_INTERVAL, create_run
from trainer.journal import JournalWriter

#: Steps a second of the logging loop below, and how long it logs.
RATE = 5
SECONDS = 3.0


@dataclass(frozen=True)
class Seen:
    """One consistent look at the journal (one read transaction)."""

    version: int
    beat_wall: float | None
    beat_step: int | None
    points: int
    top_step: int | None
    samples: int


def look(conn: sqlite3.Connection) -> Seen:
    conn.execute("BEGIN")
    try:
        beat = conn.execute("SELECT wall, step FROM heartbeat ORDER BY attempt DESC").fetchone()
        # Inside the read transaction: the version of the snapshot the other reads see.
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        points, top = conn.execute("SELECT COUNT(*), MAX(step) FROM scalar").fetchone()
        (samples,) = conn.execute("SELECT COUNT(*) FROM system_sample").fetchone()
    finally:
        conn.execute("COMMIT")
    wall, step = beat if beat else (None, None)
    return Seen(version, wall, step, points, top, samples)


class Watcher:
    """Notes every commit a reader sees, as (before, after) pairs of looks."""

    def __init__(self, journal: Path) -> None:
        self.conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, isolation_level=None)
        self.last = look(self.conn)
        self.commits: list[tuple[Seen, Seen]] = []

    def watch(self, deadline: float, until: Callable[[], bool] = lambda: False) -> bool:
        """Look about every millisecond until ``until()`` holds (True) or ``deadline``."""
        while time.monotonic() < deadline:
            seen = look(self.conn)
            if seen.version != self.last.version:
                self.commits.append((self.last, seen))
                self.last = seen
            if until():
                return True
            time.sleep(0.001)  # the polling interval of this reader, not a synchronisation
        return until()

    def close(self) -> None:
        self.conn.close()


def test_commits_of_points_carry_the_heartbeat_and_a_silent_loop_still_beats(
    tmp_path: Path,
) -> None:
    run = create_run(entry="t", kind="api", config={}, runs_root=tmp_path, name="beat")
    run.start()
    watcher = Watcher(run.paths.journal)
    try:
        # The heartbeat thread's first tick (a beat and a sample) is in before the loop logs.
        wait_until(lambda: look(watcher.conn).samples >= 1, 30, "the first system sample")
        watcher.last = look(watcher.conn)
        started = time.monotonic()
        steps = int(RATE * SECONDS)
        for step in range(1, steps + 1):
            run.log({"train/loss": 1.0 / step, "train/acc": step / steps}, step=step)
            watcher.watch(started + step / RATE)  # the training step's time: the reader looks
        logging, watcher.commits = watcher.commits, []

        with_points = [(a, b) for a, b in logging if b.points > a.points]
        others = [b for a, b in logging if b.points == a.points]
        assert len(with_points) >= steps // 2, logging
        for before, after in with_points:
            # The commit that brought points wrote the heartbeat too, at the run's step.
            assert (after.beat_wall or 0) > (before.beat_wall or 0), (before, after)
            assert (after.beat_step or 0) >= (after.top_step or 0), after
        # Without the ride-along the heartbeat thread committed a beat of its own every
        # HEARTBEAT_INTERVAL (about 2 x SECONDS commits more); a system sample joins points.
        assert len(others) <= 1, others
        assert watcher.last.samples >= 2, "no system sample while logging"

        # A long evaluation (or a hung loop): no points, and the heartbeat thread beats alone.
        beats: list[Seen] = []

        def three_beats() -> bool:
            beats[:] = [b for a, b in watcher.commits if (b.beat_wall or 0) > (a.beat_wall or 0)]
            return len(beats) >= 3

        quiet = time.monotonic()
        assert watcher.watch(quiet + 30, three_beats), watcher.commits
        assert all(b.points == watcher.last.points for b in beats)
        assert [b.beat_step for b in beats] == [steps] * len(beats)
        walls = [b.beat_wall or 0.0 for b in beats]
        gaps = [b - a for a, b in itertools.pairwise(walls)]
        # Every HEARTBEAT_INTERVAL (0.5 s): well under 2 s even on a loaded machine.
        assert all(gap < 4 * HEARTBEAT_INTERVAL for gap in gaps), gaps
    finally:
        watcher.close()
        run.finish()


def make_writer(tmp_path: Path) -> JournalWriter:
    return JournalWriter.create(
        tmp_path / "journal.sqlite", run_id="r", name="n", entry="e", kind="api", config={}
    )


def test_only_a_writer_told_to_beat_with_points_writes_the_heartbeat(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    writer.log_scalars({"x": 1.0}, 1)
    writer.flush()
    conn = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        # An import (no beat_with_points) has no heartbeat, however many points it writes.
        assert conn.execute("SELECT COUNT(*) FROM heartbeat").fetchone()[0] == 0
        run_step = 7  # the run's step: ahead of its points (a checkpoint, a resume)
        writer.beat_with_points(lambda: run_step)
        before = time.time()
        writer.log_scalars({"x": 2.0}, 2)
        writer.flush()
        wall, step = conn.execute("SELECT wall, step FROM heartbeat").fetchone()
        assert step == 7 and wall >= before
        assert conn.execute("SELECT step FROM run").fetchone()[0] == 7
        writer.log_scalars({"x": 9.0}, 9)  # points beyond the step read: never below them
        writer.heartbeat(3)  # an explicit beat still writes what it is given
        writer.flush()
        assert conn.execute("SELECT step FROM heartbeat").fetchone()[0] == 9
        writer.beat_with_points(None)
        writer.log_scalars({"x": 10.0}, 10)
        writer.flush()
        assert conn.execute("SELECT step FROM heartbeat").fetchone()[0] == 9
    finally:
        conn.close()
        writer.close()


def test_a_waiting_sample_commits_with_the_next_points_or_at_close(tmp_path: Path) -> None:
    writer = make_writer(tmp_path)
    watcher = Watcher(tmp_path / "journal.sqlite")
    try:
        writer.flush()
        watcher.last = look(watcher.conn)
        writer.system_sample(1.0, 2, None, wait=60.0)
        # Alone in the queue it waits: no commit for several of the writer's 50 ms ticks.
        assert not watcher.watch(time.monotonic() + 0.4, lambda: bool(watcher.commits))
        writer.log_scalars({"x": 1.0}, 1)
        assert watcher.watch(time.monotonic() + 30, lambda: watcher.last.points == 1)
        assert [(b.points, b.samples) for _, b in watcher.commits] == [(1, 1)]
        writer.system_sample(3.0, 4, None, wait=60.0)
    finally:
        watcher.close()
        writer.close()  # commits the waiting sample: nothing queued is lost
    conn = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        assert conn.execute("SELECT COUNT(*) FROM system_sample").fetchone()[0] == 2
    finally:
        conn.close()
