"""The journal follower: each point once and in order, no read while nothing changed."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np

from tests.helpers import visible_points
from trainer.journal.follower import Delta, Follower, Followers
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths


def make_journal(root: Path, name: str = "r1") -> tuple[RunPaths, JournalWriter]:
    paths = RunPaths(root / name).create()
    writer = JournalWriter.create(
        paths.journal, run_id=f"id-{name}", name=name, entry="spirals", kind="recipe",
        config={}, max_steps=200,
    )  # fmt: skip
    return paths, writer


class Buffer:
    """A subscriber that keeps a curve the way the charts do: new attempts cut, then append."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[int, float]]] = {}
        self.delivered = 0
        self.deltas: list[Delta] = []

    def __call__(self, delta: Delta) -> None:
        self.deltas.append(delta)
        batch = delta.batch
        if batch is None:
            return
        if delta.first and not delta.replay:
            self.points.clear()
        for _attempt, start in batch.new_attempts:
            for key, pts in self.points.items():
                self.points[key] = [p for p in pts if p[0] < start]
        for key, series in batch.points.items():
            self.delivered += len(series)
            self.points.setdefault(key, []).extend(
                zip(series.steps.tolist(), series.values.tolist(), strict=True)
            )


def checkpoint(journal: Path) -> None:
    """A WAL checkpoint, as the writer does at quiet moments (the writer is idle here)."""
    conn = sqlite3.connect(journal)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def poll(follower: Follower) -> Delta | None:
    delta = follower.poll()
    if delta is not None:
        follower.publish(delta)
    return delta


def test_each_point_once_and_in_order_across_checkpoints_and_a_resume(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    follower = Follower(paths.root)
    buffer, other = Buffer(), Buffer()
    follower.subscribe(buffer)
    follower.subscribe(other)
    logged = 0
    for round_ in range(6):
        for step in range(round_ * 25 + 1, round_ * 25 + 26):
            w.log_scalars({"loss": float(step), "acc": step / 1000}, step)
            logged += 2
        w.flush()
        if round_ % 2:
            checkpoint(paths.journal)
        poll(follower)
    w.set_status("crashed")
    w.close()
    poll(follower)
    w2 = JournalWriter.open_next_attempt(paths.journal, resume_step=120)
    for step in range(121, 201):
        w2.log_scalars({"loss": -float(step)}, step)
        logged += 1
        if step % 20 == 0:
            w2.flush()
            checkpoint(paths.journal)
            poll(follower)
    w2.close()
    poll(follower)
    expected = visible_points(paths.root)
    for sub in (buffer, other):
        assert sub.delivered == logged  # every point once, none twice
        for key, pts in sub.points.items():
            steps = [s for s, _ in pts]
            assert steps == sorted(set(steps)), key  # in order, no duplicate
            assert dict(pts) == expected[key]
    assert buffer.points["loss"][-1] == (200, -200.0)
    assert [d.first for d in buffer.deltas].count(True) == 1


def test_a_finished_run_is_not_read_while_nothing_changes(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"loss": 1.0}, 1)
    w.set_status("finished")
    w.close()
    follower = Follower(paths.root)
    assert poll(follower) is not None
    poll(follower)  # a checkpoint the writer's close made may still count as a change
    reads = follower.reads
    for _ in range(50):
        assert follower.poll() is None
    assert follower.reads == reads
    assert follower.polls >= 52
    follower.close()


def test_a_replaced_journal_is_read_again_from_its_start(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"loss": 1.0}, 1)
    w.close()
    follower = Follower(paths.root)
    buffer = Buffer()
    follower.subscribe(buffer)
    poll(follower)
    shutil.rmtree(paths.root)
    _paths, w2 = make_journal(tmp_path)
    w2.log_scalars({"loss": 7.0}, 3)
    w2.close()
    delta = poll(follower)
    assert delta is not None and delta.first
    assert buffer.points == {"loss": [(3, 7.0)]}
    follower.close()


def test_an_unreadable_journal_says_why_and_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "journal.sqlite").write_bytes(b"not a database at all" * 100)
    follower = Follower(folder)
    delta = follower.poll(now=0.0)
    assert delta is not None and delta.error and delta.batch is None
    assert follower.poll(now=1.0) is None  # not before the retry delay
    again = follower.poll(now=10.0)
    assert again is not None and again.error


def test_a_late_subscriber_gets_the_run_events_and_samples_so_far(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.event("info", "hello")
    w.system_sample(12.0, 1000, None)
    w.log_scalars({"loss": 1.0}, 1)
    w.flush()
    follower = Follower(paths.root)
    poll(follower)
    late = Buffer()
    follower.subscribe(late)
    (replay,) = late.deltas
    assert replay.replay and replay.batch is not None
    assert [e.message for e in replay.batch.events] == ["hello"]
    assert len(replay.batch.samples) == 1 and not replay.batch.points
    w.close()
    follower.close()


def test_followers_share_one_follower_per_folder_and_close_dropped_ones(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    w.log_scalars({"loss": 1.0}, 1)
    w.close()
    followers = Followers()
    a = followers.follow(paths.root, "table")
    b = followers.follow(paths.root, "health")
    assert a is b and len(followers) == 1
    assert len(followers.poll_all(followers.followers())) == 1
    followers.unfollow(paths.root, "table")
    assert not a.closed
    followers.unfollow(paths.root, "health")
    assert len(followers) == 0
    followers.poll_all(followers.followers())
    assert a.closed


def test_latest_skips_a_newest_attempt_that_left_no_visible_point(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    for step in range(1, 11):
        w.log_scalars({"loss": float(step)}, step)
    w.close()
    w2 = JournalWriter.open_next_attempt(paths.journal, resume_step=8)
    w2.log_scalars({"loss": 90.0}, 9)
    w2.close()
    w3 = JournalWriter.open_next_attempt(paths.journal, resume_step=4)
    w3.log_scalars({"other": 1.0}, 5)
    w3.close()
    with JournalReader(paths.root) as reader:
        assert reader.latest()["loss"] == (4, 4.0)
        assert np.array_equal(reader.series("loss").steps, np.arange(1, 5))


def test_a_long_key_hands_over_its_newest_points_and_a_history(tmp_path: Path) -> None:
    paths, w = make_journal(tmp_path)
    for step in range(1, 501):
        w.log_scalars({"loss": float(step), "short": 1.0} if step <= 10 else
                      {"loss": float(step)}, step)  # fmt: skip
    w.flush()
    follower = Follower(paths.root, history_limit=100)
    buffer = Buffer()
    follower.subscribe(buffer)
    first = poll(follower)
    assert first is not None and first.batch is not None
    assert "loss" in first.batch.history  # read by viewport, not point by point
    assert len(first.batch.points.get("loss", ())) <= 100
    assert [s for s, _ in buffer.points["short"]] == list(range(1, 11))
    w.log_scalars({"loss": 501.0}, 501)
    w.close()
    poll(follower)
    assert buffer.points["loss"][-1] == (501, 501.0)  # new points follow as usual
    follower.close()
