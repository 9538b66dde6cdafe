"""The journal: batched writer, incremental reader, superseding attempts, bad files."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from tests.fsutil import read_only
from trainer.errors import DiskFullError, JournalError
from trainer.journal import JournalReader, JournalWriter, derive_status, schema
from trainer.paths import RunPaths
from trainer.runs import summarize


def make_journal(root: Path, name: str = "r1", **kw: object) -> tuple[RunPaths, JournalWriter]:
    paths = RunPaths(root / name).create()
    writer = JournalWriter.create(
        paths.journal, run_id=f"id-{name}", name=name, entry="spirals", kind="recipe",
        config={"lr": 0.1}, max_steps=100, **kw,
    )  # fmt: skip
    return paths, writer


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_points_round_trip_and_tail_returns_only_new_rows(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    reader = JournalReader(paths.root)
    for step in range(1, 501):
        w.log_scalars({"train/loss": 1.0 / step, "val/acc": step / 500}, step)
    w.flush()
    first = reader.tail()
    assert first.n_points == 1000
    np.testing.assert_array_equal(first.points["train/loss"].steps, np.arange(1, 501))
    np.testing.assert_allclose(first.points["train/loss"].values, 1.0 / np.arange(1, 501))
    assert reader.tail().n_points == 0
    w.log_scalars({"train/loss": 0.5, "perf/new": 3.0}, 501)
    w.flush()
    second = reader.tail()
    assert {k: len(s) for k, s in second.points.items()} == {"train/loss": 1, "perf/new": 1}
    assert second.points["train/loss"].steps.tolist() == [501]
    w.close()
    reader.close()


def test_journal_is_wal_private_and_has_schema_version(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.close()
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.journal.stat().st_mode) == 0o600
    conn = sqlite3.connect(paths.journal)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == schema.SCHEMA_VERSION
    conn.close()


def test_plain_sqlite3_clients_read_the_scalars_view(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"train/loss": 2.5}, 7)
    w.close()
    conn = sqlite3.connect(f"{paths.journal.as_uri()}?mode=ro", uri=True)
    rows = conn.execute("SELECT key, step, value, attempt FROM scalars").fetchall()
    assert rows == [("train/loss", 7, 2.5, 1)]
    conn.close()


def test_log_is_not_blocked_by_disk_and_commits_within_a_tick(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    reader = JournalReader(paths.root)
    w.log_scalars({"x": 1.0}, 1)
    # No flush: the writer thread commits on its own within its 50 ms interval.
    from tests.helpers import wait_until

    wait_until(lambda: reader.tail().n_points == 1, timeout=5, what="the background commit")
    w.close()
    reader.close()


def test_a_new_attempt_supersedes_redone_steps_so_curves_never_zigzag(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    reader = JournalReader(paths.root)
    for step in range(1, 31):
        w.log_scalars({"loss": float(step)}, step)
    w.close()
    assert reader.tail().n_points == 30
    w2 = JournalWriter.open_next_attempt(paths.journal, resume_step=20)
    assert w2.attempt == 2
    for step in range(21, 26):
        w2.log_scalars({"loss": -float(step)}, step)
    w2.close()
    batch = reader.tail()
    assert batch.new_attempts == [(2, 21)]
    assert batch.points["loss"].steps.tolist() == list(range(21, 26))
    full = reader.series("loss")
    assert full.steps.tolist() == list(range(1, 26))
    assert np.all(np.diff(full.steps) > 0)
    assert full.values[-1] == -25.0 and full.values[19] == 20.0
    everything = reader.series("loss", include_superseded=True)
    assert len(everything) == 35  # the old attempt's points are kept, only hidden
    assert reader.latest()["loss"] == (25, -25.0)
    reader.close()


def test_events_samples_heartbeat_and_status(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.set_status("running")
    w.event("started", "hello", step=0)
    w.heartbeat(12)
    w.system_sample(50.0, 1234, [{"index": 0, "mem_used": 1}])
    w.flush()
    with JournalReader(paths.root) as reader:
        info = reader.run_info()
        assert info.status == "running" and info.heartbeat_step == 12
        assert derive_status(info) == "running"
        assert [e.kind for e in reader.events()] == ["started"]
        sample = reader.samples()[0]
        assert sample.rss == 1234 and sample.gpus == [{"index": 0, "mem_used": 1}]
    w.close()


def test_a_running_journal_whose_process_is_gone_reads_as_crashed(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.set_status("running")
    w.set_fields(pid=2**22 + 12345, pid_started=1.0)  # no such process
    w.close()
    assert summarize(paths.root).status == "crashed"


def test_non_numeric_values_are_skipped_not_fatal(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"a": "not a number", "b": 2.0}, 1)  # type: ignore[dict-item]
    w.close()
    with JournalReader(paths.root) as reader:
        assert reader.keys() == ["a", "b"] or reader.keys() == ["b"]
        assert len(reader.series("b")) == 1 and len(reader.series("a")) == 0


def test_readers_never_write(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"a": 1.0}, 1)
    w.close()
    before = digest(paths.journal)
    with JournalReader(paths.root) as reader:
        reader.tail()
        reader.series("a")
        with pytest.raises(sqlite3.OperationalError):
            reader._conn.execute("INSERT INTO metric_key (name) VALUES ('x')")  # type: ignore[union-attr]
    assert digest(paths.journal) == before


# ---------------------------------------------------------------------------- bad journals
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "bogus"
    folder.mkdir()
    journal = folder / "journal.sqlite"
    journal.write_bytes(b"this is not a database\n" * 100)
    before = digest(journal)
    with pytest.raises(JournalError, match="not an SQLite journal"):
        JournalReader(folder)
    with pytest.raises(JournalError, match="not an SQLite journal"):
        JournalWriter.open_next_attempt(journal, resume_step=0)
    summary = summarize(folder)
    assert summary.status == "unreadable" and "not an SQLite" in (summary.error or "")
    assert digest(journal) == before


def test_a_truncated_journal_is_reported_and_left_untouched(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    for step in range(1, 20001):
        w.log_scalars({"a": float(step), "b": 1.0}, step)
    w.close()
    data = paths.journal.read_bytes()
    paths.journal.write_bytes(data[: len(data) // 3])
    before = digest(paths.journal)
    with pytest.raises(JournalError, match="damaged or truncated"), JournalReader(paths.root) as r:
        r.series("a")
        r.series("b")
    assert digest(paths.journal) == before


def test_a_journal_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.close()
    conn = sqlite3.connect(paths.journal)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = digest(paths.journal)
    with pytest.raises(JournalError, match="newer than this TrainDesk"):
        JournalReader(paths.root)
    with pytest.raises(JournalError, match="upgrade TrainDesk"):
        JournalWriter.open_next_attempt(paths.journal, resume_step=0)
    assert digest(paths.journal) == before


def test_a_read_only_journal_can_be_read_but_not_resumed(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"a": 1.0}, 1)
    w.close()
    with read_only(paths.journal, paths.root):
        with JournalReader(paths.root) as reader:
            assert len(reader.series("a")) == 1
        with pytest.raises(JournalError, match="read-only"):
            JournalWriter.open_next_attempt(paths.journal, resume_step=0)


def test_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="does not exist"):
        JournalReader(tmp_path / "nowhere" / "journal.sqlite")


def test_disk_full_stops_the_writer_and_keeps_what_was_committed(tmp_path: Path) -> None:
    import resource
    import signal

    paths, w = make_journal(tmp_path)
    for step in range(1, 101):
        w.log_scalars({"a": float(step)}, step)
    w.flush()
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = os.path.getsize(paths.journal) + 64 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(DiskFullError, match="free some disk space"):
            for step in range(101, 2_000_001):
                w.log_scalars({f"k{i}": float(i) for i in range(20)}, step)
                if step % 5000 == 0:
                    w.flush()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
        w.close()
    conn = sqlite3.connect(paths.journal)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with JournalReader(paths.root) as reader:
        assert reader.series("a").steps.tolist() == list(range(1, 101))


def test_wall_times_are_kept_per_point_even_when_stored_once_per_step(tmp_path: Path) -> None:
    import time

    paths, w = make_journal(tmp_path)
    w.log_scalars({"train/loss": 1.0, "train/acc": 0.5}, 1)  # shares the step's wall time
    w.log_scalars({"lone": 3.0}, 2)  # a single point keeps its own
    w.flush()
    time.sleep(0.25)  # an evaluation that takes a while, logged at the same step
    w.log_scalars({"val/loss": 2.0, "val/acc": 0.4}, 2)
    w.close()
    with JournalReader(paths.root) as reader:
        t1 = reader.series("train/loss").walls[0]
        assert reader.series("train/acc").walls[0] == t1
        t2 = reader.series("lone").walls[0]
        tv = reader.series("val/loss").walls[0]
        assert t1 <= t2 < tv and tv - t2 >= 0.2
        assert reader.tail().points["val/acc"].walls[0] == tv
    conn = sqlite3.connect(paths.journal)
    walls = conn.execute("SELECT key, wall_time FROM scalars").fetchall()
    conn.close()
    assert all(wall is not None and wall > 1e9 for _, wall in walls)


# ---------------------------------------------------------------------------- listing reads
def _spy_frozen_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each reader summarize() opens, whether it reads the file frozen."""
    import trainer.runs as runs

    frozen: list[bool] = []

    def spy(path: Path, **kw: bool) -> JournalReader:
        frozen.append(kw.get("frozen", False))
        return JournalReader(path, **kw)

    monkeypatch.setattr(runs, "JournalReader", spy)
    return frozen


def test_an_idle_journal_is_summarised_as_the_usual_read_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ended run (nothing in its WAL) is listed from a lock-free read that sees exactly
    what the usual read sees; a live run with commits in its WAL is read the usual way."""
    import trainer.journal.db as jdb
    import trainer.runs as runs

    paths, w = make_journal(tmp_path)
    for step in range(1, 40):
        w.log_scalars({"train/loss": 1.0 / step, "val/acc": step / 40}, step)
    w.event("paused", "", step=10)
    w.event("resumed", "", step=10)
    w.set_status("finished", exit_reason="finished", step=39)
    w.close()
    (paths.root / "listing.json").unlink()  # read the journal itself (tests/test_listing_file)
    assert jdb.idle_mark(paths.journal) is not None
    frozen = _spy_frozen_reads(monkeypatch)
    fast = summarize(paths.root)
    assert frozen == [True]
    with JournalReader(paths.root) as reader:
        info, latest, events = reader.listing(runs.PAUSE_EVENTS)
    usual = runs.summary_from(
        info, paths.root, {k: v for k, (_s, v) in latest.items()}, runs.pause_time(events)
    )
    assert fast == usual
    assert fast.latest == {"train/loss": 1.0 / 39, "val/acc": 39 / 40}
    assert fast.status == "finished" and fast.step == 39

    # A live writer's commits sit in the WAL: no lock-free read of a file that lags them.
    paths2, w2 = make_journal(tmp_path, "live")
    w2.log_scalars({"train/loss": 0.5}, 1)
    w2.flush()
    frozen.clear()
    assert jdb.idle_mark(paths2.journal) is None
    assert summarize(paths2.root).latest == {"train/loss": 0.5}
    assert frozen == [False]
    w2.close()


def test_a_journal_that_changes_during_a_lock_free_read_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainer.runs as runs

    paths, w = make_journal(tmp_path)
    w.log_scalars({"train/loss": 2.0}, 1)
    w.close()
    marks = iter([(1, 1, 1), (1, 1, 2)])  # the file changed between the two looks
    monkeypatch.setattr(runs, "idle_mark", lambda _path: next(marks))
    frozen = _spy_frozen_reads(monkeypatch)
    assert summarize(paths.root).latest == {"train/loss": 2.0}
    assert frozen == [True, False]
