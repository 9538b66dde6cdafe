"""The app's followers: reads off the GUI thread, one delta for every panel, idle runs unread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.follow.hub import FollowHub
from desktop_app.main_window import MainWindow
from trainer.journal.follower import Delta
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter

MakeRun = Callable[..., JournalWriter]
pytestmark = pytest.mark.gui
TIMEOUT_MS = 20_000


@pytest.fixture
def hub(qtbot: QtBot) -> Iterator[FollowHub]:
    io = BackgroundIO()
    follow = FollowHub(io, interval_ms=50)
    yield follow
    io.close()
    follow.shutdown()


def test_every_subscriber_gets_each_point_once_on_the_gui_thread(
    qtbot: QtBot, hub: FollowHub, runs_dir: Path, make_run: MakeRun
) -> None:
    writer = make_run("live", losses=[1.0, 0.5], keep_open=True)
    folder = runs_dir / "live"
    got: dict[str, list[int]] = {"a": [], "b": []}
    threads: set[bool] = set()

    def subscriber(name: str) -> Callable[[Delta], None]:
        def on_delta(delta: Delta) -> None:
            threads.add(threading.current_thread() is threading.main_thread())
            if delta.batch is not None and "train/loss" in delta.batch.points:
                got[name].extend(delta.batch.points["train/loss"].steps.tolist())

        return on_delta

    stop_a = hub.follow(folder, "a", subscriber("a"))
    stop_b = hub.follow(folder, "b", subscriber("b"))
    assert len(hub.followers) == 1  # one follower for both
    step = 2

    def log_more() -> None:
        nonlocal step
        writer.log_scalars({"train/loss": 1.0 / (step + 1)}, step)
        writer.flush()
        step += 1

    timer = QTimer()
    timer.timeout.connect(log_more)
    timer.start(20)
    qtbot.waitUntil(lambda: step >= 40, timeout=TIMEOUT_MS)
    timer.stop()
    qtbot.waitUntil(lambda: len(got["a"]) == step and len(got["b"]) == step, timeout=TIMEOUT_MS)
    assert got["a"] == got["b"] == list(range(step))
    assert threads == {True}  # delivered on the GUI thread
    follower = hub.follower(folder)
    assert follower is not None
    stop_a()
    stop_b()
    assert hub.follower(folder) is None
    qtbot.waitUntil(lambda: follower.closed, timeout=TIMEOUT_MS)  # closed on the worker


def test_a_finished_run_is_not_read_while_idle(
    qtbot: QtBot, hub: FollowHub, runs_dir: Path, make_run: MakeRun
) -> None:
    make_run("done", losses=[1.0, 0.5, 0.25])
    deltas: list[Delta] = []
    hub.follow(runs_dir / "done", "test", deltas.append)
    follower = hub.follower(runs_dir / "done")
    assert follower is not None
    qtbot.waitUntil(lambda: len(deltas) >= 1 and follower.polls >= 3, timeout=TIMEOUT_MS)
    reads, polls = follower.reads, follower.polls
    qtbot.waitUntil(lambda: follower.polls >= polls + 10, timeout=TIMEOUT_MS)
    assert follower.reads == reads
    assert deltas[0].first and deltas[0].batch is not None
    assert deltas[0].batch.run.status == "finished"


_READS = ("__init__", "tail", "run_info", "events", "samples", "latest", "series", "keys")


@pytest.fixture
def read_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A probe: the name of the thread of every JournalReader open and read, in the app."""
    seen: list[str] = []
    for name in _READS:
        original = getattr(JournalReader, name)

        def probe(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            seen.append(threading.current_thread().name)
            return __original(*args, **kwargs)

        monkeypatch.setattr(JournalReader, name, probe)
    return seen


def test_no_journal_is_read_on_the_gui_thread(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun, read_threads: list[str]
) -> None:
    make_run("done", losses=[3.0, 2.0])
    writer = make_run("live", losses=[1.0, 0.5], keep_open=True)
    writer.system_sample(12.0, 1 << 30, None)
    writer.flush()
    read_threads.clear()  # the trainer's own: "done"'s writer read it for listing.json
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    win.show_dock("health")
    step = 2

    def log_more() -> None:
        nonlocal step
        writer.log_scalars({"train/loss": 1.0 / (step + 1)}, step)
        writer.heartbeat(step)
        writer.flush()
        step += 1

    timer = QTimer()
    timer.timeout.connect(log_more)
    timer.start(50)
    try:
        live = str(runs_dir / "live")
        win.open_folder(Path(live))
        qtbot.waitUntil(lambda: win.table_model.rowCount() == 2, timeout=TIMEOUT_MS)
        qtbot.waitUntil(
            lambda: (row := win.health.model.row(live)) is not None and row.step >= 5,
            timeout=TIMEOUT_MS,
        )
        qtbot.waitUntil(lambda: len(win.system.history) >= 1, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: win.charts.model.newest_wall() is not None, timeout=TIMEOUT_MS)
    finally:
        timer.stop()
        win.close()
    assert read_threads, "the probe saw no read at all"
    assert threading.main_thread().name not in read_threads


def test_a_live_runs_row_comes_from_its_follower(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun
) -> None:
    make_run("done", losses=[3.0])
    writer = make_run("live", losses=[1.0, 0.5], keep_open=True)
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    live = str(runs_dir / "live")

    def row() -> Any:
        index = win.runs.index_of(live)
        return None if index is None else win.runs.runs[index]

    try:
        qtbot.waitUntil(lambda: live in win.runs.scanner.followed, timeout=TIMEOUT_MS)
        reads = win.runs.scanner.reads
        for step in range(2, 30):
            writer.log_scalars({"train/loss": 1.0 / step}, step)
        writer.heartbeat(29)
        writer.flush()
        qtbot.waitUntil(
            lambda: row().step == 29 and row().latest["train/loss"] == 1.0 / 29,
            timeout=TIMEOUT_MS,
        )
        assert win.runs.scanner.reads == reads  # the scanner did not open it again
        writer.set_status("finished", exit_reason="finished", step=29)
        writer.close()
        qtbot.waitUntil(lambda: row().status == "finished", timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: live not in win.runs.scanner.followed, timeout=TIMEOUT_MS)
    finally:
        win.close()


def test_the_charts_take_a_run_from_its_one_follower(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the window the charts subscribe to the run's follower (the one the health panel
    and the row use): no tail reader of their own, every point drawn, new ones as they come."""
    from desktop_app.charts.feed import RunFeed

    own_tails: list[Path] = []
    real_poll = RunFeed.poll

    def poll(self: RunFeed) -> Any:
        own_tails.append(self.folder)
        return real_poll(self)

    monkeypatch.setattr(RunFeed, "poll", poll)
    writer = make_run("live", losses=[1.0, 0.5], keep_open=True)
    folder = runs_dir / "live"
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    win.show_dock("health")
    try:
        win.open_folder(folder)
        qtbot.waitUntil(lambda: "train/loss" in win.charts.plots, timeout=TIMEOUT_MS)
        for step in range(2, 40):
            writer.log_scalars({"train/loss": 1.0 / (step + 1)}, step)
        writer.heartbeat(39)
        writer.flush()

        def steps_drawn() -> list[float]:
            plot = win.charts.plots["train/loss"]
            if folder not in plot.runs:
                return []
            item = plot.items_of(folder)[0]
            return [] if item.xData is None else item.xData.tolist()

        qtbot.waitUntil(lambda: steps_drawn() == [float(s) for s in range(40)], timeout=TIMEOUT_MS)
        follower = win.follow.follower(folder)
        assert follower is not None and follower.subscribers >= 2  # the charts and others
        assert len(win.follow.followers) == len({folder} | set(map(Path, win._row_follows)))
        assert own_tails == []  # the charts read no tail of their own
    finally:
        win.close()
