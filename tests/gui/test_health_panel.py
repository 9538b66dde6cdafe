"""The Health panel: per-run figures that react to a stalled, a hung (SIGSTOP) and a crashed
(kill -9) trainer, and the app's own figures (event-loop lag, redraw time, memory, journals)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.health.model import (
    HealthModel,
    HealthReaders,
    folders_to_watch,
    read_process,
)
from desktop_app.health.panel import HealthPanel
from desktop_app.main_window import MainWindow
from tests.helpers import NOTORCH, spawn
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui

TIMEOUT_MS = 15_000
START_MS = 120_000  # a trainer imports torch first


@pytest.fixture
def workers(qapp: object) -> Iterator[tuple[BackgroundIO, BackgroundIO]]:
    io = BackgroundIO()
    tasks = BackgroundIO(name="traindesk-tasks", workers=2)
    yield io, tasks
    io.close()
    tasks.close()


@pytest.fixture
def panel(qtbot: QtBot, workers: tuple[BackgroundIO, BackgroundIO]) -> Iterator[HealthPanel]:
    io, tasks = workers
    model = HealthModel(heartbeat_timeout=2.0, stall_min=1.0, window_s=5.0)
    widget = HealthPanel(io, tasks, model=model, interval_ms=200)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    io.close()
    widget.shutdown()


def stalled_journal(folder: Path) -> JournalWriter:
    """A run that stepped quickly (0.1 s a step) until 20 s ago, and still beats now."""
    paths = RunPaths(folder).create()
    writer = JournalWriter.create(paths.journal, run_id="id-slow", name=folder.name,
                                  entry="spirals", kind="recipe", config={},
                                  max_steps=1000)  # fmt: skip
    writer.set_status("running")
    start = time.time() - 21.0
    for step in range(1, 11):  # two keys a step: the journal keeps the step's wall time
        values = {"train/loss": 1.0 / step, "train/acc": step / 10}
        writer.log_scalars(values, step, wall=start + 0.1 * step)
    writer.event("error", "CUDA error: an illegal memory access (recovered)")
    writer.heartbeat(10)
    writer.flush()
    return writer


def test_model_rates_lag_restarts_and_last_error(runs_dir: Path) -> None:
    folder = runs_dir / "slow"
    writer = stalled_journal(folder)
    try:
        model = HealthModel(heartbeat_timeout=5.0, stall_min=5.0, window_s=30.0)
        changes: list[int] = []
        model.add_listener(lambda: changes.append(1))
        assert model.set_runs([(str(folder), "slow")]) and len(changes) == 1
        assert model.set_runs([(str(folder), "slow")]) is False  # nothing new: no call
        readers = HealthReaders()
        samples, errors = readers.read([str(folder)], model.derive)
        assert errors == {} and readers.open_count == 1
        first = samples[0]
        model.apply([first], drawn={str(folder): first.info.last_step_wall - 0.5})
        row = model.row(folder)
        assert row is not None and row.status == "stalled"
        assert row.step == 10 and row.step_rate is None  # one reading: no rate yet
        assert row.restarts == 0 and row.last_error.startswith("error: CUDA error")
        assert row.journal_lag == pytest.approx(0.5)
        assert row.heartbeat_age is not None and row.heartbeat_age < 5
        later = dataclasses.replace(readers.read([str(folder)], model.derive)[0][0])
        later = dataclasses.replace(later, wall=first.wall + 2.0)
        model.apply([later], restarts={str(folder): 2})
        row = model.row(folder)
        assert row is not None and row.step_rate == 0.0 and row.restarts == 2
        assert row.journal_lag is None  # no longer charted
        assert len(row.rate_history) == 1
        # Back-pressure: the health view says that logging throttles training.
        writer.event("throttled", "logging is throttling training: log() waited 0.6 s")
        writer.flush()
        model.apply(readers.read([str(folder)], model.derive)[0])
        row = model.row(folder)
        assert row is not None and row.last_error.startswith("throttled: logging is throttling")
        readers.read([])  # a run no longer followed: its reader is closed
        assert readers.open_count == 0
    finally:
        writer.close()


def test_runs_to_watch() -> None:
    now = 1000.0
    runs = [("/r/a", "a", "running", 990.0), ("/r/b", "b", "finished", 100.0),
            ("/r/c", "c", "crashed", 900.0), ("/r/d", "d", "queued", None),
            ("/r/e", "e", "stopped", 10.0)]  # fmt: skip
    chosen = folders_to_watch(runs, ["/r/e"], now=now)
    assert [name for _, name in chosen] == ["a", "c", "d", "e"]


def test_panel_shows_a_stalled_run(qtbot: QtBot, panel: HealthPanel, runs_dir: Path) -> None:
    folder = runs_dir / "slow"
    writer = stalled_journal(folder)
    beat = QTimer()
    beat.timeout.connect(lambda: (writer.heartbeat(10), writer.flush()))
    beat.start(200)
    try:
        panel.set_runs([(str(folder), "slow")])

        def shown() -> bool:
            row = panel.model.row(folder)
            return row is not None and row.status == "stalled" and row.step_rate == 0.0

        qtbot.waitUntil(shown, timeout=TIMEOUT_MS)
        assert panel.table.item(0, 1).text() == "stalled"
        assert panel.table.item(0, 3).text() == "0"
        assert "CUDA error" in panel.table.item(0, 6).text()
        qtbot.waitUntil(lambda: str(folder) in panel.curves, timeout=TIMEOUT_MS)
    finally:
        beat.stop()
        writer.close()


@pytest.fixture
def trainer_run(runs_dir: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(name: str) -> subprocess.Popen[str]:
        # Only stepping, then stopped or killed: the torch-free loop does (tests.helpers).
        proc = spawn("run", str(NOTORCH), "--name", name, "--runs-dir", str(runs_dir), "--quiet",
                     "--set", "max_steps=100000", "--set", "step_sleep=0.02")  # fmt: skip
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)


def test_hung_then_crashed_trainer(
    qtbot: QtBot, panel: HealthPanel, runs_dir: Path,
    trainer_run: Callable[[str], subprocess.Popen[str]],
) -> None:  # fmt: skip
    folder = runs_dir / "victim"
    proc = trainer_run("victim")
    panel.set_runs([(str(folder), "victim")])

    def row_is(check: Callable[..., bool]) -> bool:
        row = panel.model.row(folder)
        return row is not None and check(row)

    qtbot.waitUntil(
        lambda: row_is(lambda r: r.status == "running" and (r.step_rate or 0) > 1),
        timeout=START_MS,
    )
    os.killpg(proc.pid, signal.SIGSTOP)  # hung: alive, but no heartbeat any more
    qtbot.waitUntil(lambda: row_is(lambda r: r.status == "unresponsive"), timeout=TIMEOUT_MS)
    row = panel.model.row(folder)
    assert row is not None and row.heartbeat_age is not None and row.heartbeat_age > 2.0
    age = row.heartbeat_age
    qtbot.waitUntil(lambda: row_is(lambda r: (r.heartbeat_age or 0) > age + 0.3),
                    timeout=TIMEOUT_MS)  # fmt: skip
    assert panel.table.item(0, 1).text() == "unresponsive"

    os.killpg(proc.pid, signal.SIGKILL)  # crashed
    qtbot.waitUntil(lambda: row_is(lambda r: r.status == "crashed"), timeout=TIMEOUT_MS)
    row = panel.model.row(folder)
    assert row is not None and row.step_rate is None and row.heartbeat_age is None
    assert row.last_error.startswith("crashed")
    assert panel.table.item(0, 1).text() == "crashed"


def test_app_figures(qtbot: QtBot, panel: HealthPanel, runs_dir: Path) -> None:
    # Event-loop lag: a slot that holds the loop shows up as one late timer.
    QTimer.singleShot(0, lambda: time.sleep(0.3))  # simulated work on the GUI thread
    qtbot.waitUntil(lambda: (panel.app.loop_lag_max_ms or 0) >= 200, timeout=TIMEOUT_MS)
    assert "worst" in panel.lag_label.text()
    qtbot.waitUntil(lambda: panel.app.rss is not None, timeout=TIMEOUT_MS)
    assert panel.app.rss > 10 * 2**20 and "MiB" in panel.memory_label.text()

    before = read_process().open_journals
    assert before is not None
    paths = RunPaths(runs_dir / "j").create()
    JournalWriter.create(paths.journal, run_id="j", name="j", entry="spirals", kind="recipe",
                         config={}, max_steps=None).close()  # fmt: skip
    with JournalReader(paths.root):
        assert read_process().open_journals == before + 1
    assert read_process().open_journals == before


def test_window_health_follows_runs_and_charts(
    qtbot: QtBot, runs_dir: Path, make_run: Callable[..., JournalWriter]
) -> None:
    make_run("done", losses=[1.0, 0.5, 0.25])
    live = make_run("live", losses=[2.0, 1.5], keep_open=True)
    live.log_scalars({"train/loss": 1.0, "train/acc": 0.5}, 2)  # the step's wall is kept
    live.flush()
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    win.show_dock("health")
    try:
        health = win.health

        def names() -> list[str]:
            return [r.name for r in health.model.rows]

        qtbot.waitUntil(lambda: sorted(names()) == ["done", "live"], timeout=TIMEOUT_MS)
        # The newest run is selected and charted: its journal lag is measured.
        qtbot.waitUntil(lambda: win.charts.has_drawn, timeout=TIMEOUT_MS)
        live_folder = str(runs_dir / "live")
        qtbot.waitUntil(
            lambda: (
                (row := health.model.row(live_folder)) is not None and row.journal_lag is not None
            ),
            timeout=TIMEOUT_MS,
        )
        qtbot.waitUntil(lambda: health.app.redraw_ms is not None, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: (health.app.open_journals or 0) >= 2, timeout=TIMEOUT_MS)
        assert health.journals_label.text() == str(health.app.open_journals)
    finally:
        live.close()
        win.close()
