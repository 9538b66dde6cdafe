"""Supervised runs in the app without trainers: the table's health and restart display, the
supervision settings, the quit signals, and closing (or quitting under us) with live children.

The live children here are plain ``python -c 'sleep'`` processes started through the
supervisor's ``command`` hook: no journal, so they stay "starting" and a stop is a SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.main import quit_under_us
from desktop_app.main_window import MainWindow
from desktop_app.quit_signals import QuitSignals, quit_signals
from desktop_app.runs_ctl.close_prompt import CloseChoice, close_with_children
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_ctl.supervisor import Supervisor
from desktop_app.runs_model import RunsModel
from desktop_app.runs_table import (
    STATUS_BACKGROUNDS,
    STATUS_COLORS,
    STATUS_COLUMN,
    STATUS_ICONS,
    RowNote,
    RunsTableModel,
)
from desktop_app.settings.dialog import SettingsDialog
from desktop_app.settings.model import AppSettings, SettingsError, load_settings, settings_path
from tests.gui.supervisor_recorder import Recorder, end_supervision, record
from trainer.journal.writer import JournalWriter

pytestmark = pytest.mark.gui

MakeRun = Callable[..., JournalWriter]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture(autouse=True)
def collect_here(qtbot: QtBot) -> Iterator[None]:
    """Qt objects left in reference cycles are deleted here, on the GUI thread, not by a
    garbage collection that happens to run on a worker thread during a later test."""
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def make_window(qtbot: QtBot, runs_dir: Path) -> Callable[..., MainWindow]:
    """``make_window(settings=None, sleepers=False)``: a main window, deleted after the test;
    with ``sleepers`` its supervisor starts sleeping pythons instead of trainers."""

    def make(settings: AppSettings | None = None, *, sleepers: bool = False) -> MainWindow:
        window = MainWindow(runs_dir, settings=settings)
        qtbot.addWidget(window, before_close_func=_confirm_close)
        if sleepers:
            window.supervisor._command = list(SLEEPER)
        return window

    return make


def _confirm_close(window: QWidget) -> None:
    assert isinstance(window, MainWindow)
    window._close_confirmed = True


# ---------------------------------------------------------------------- the runs table
def test_every_health_status_has_an_icon_and_a_colour() -> None:
    for status in ("unresponsive", "stalled"):
        assert status in STATUS_ICONS and status in STATUS_COLORS
        assert status in STATUS_BACKGROUNDS  # tinted: not colour of the text alone
    assert STATUS_ICONS["stalled"] != STATUS_ICONS["running"]


def status_cell(table: RunsTableModel, row: int, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
    return table.data(table.index(row, STATUS_COLUMN), role)


def test_the_table_shows_health_and_pending_restarts(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun
) -> None:
    make_run("live", losses=[1.0, 0.5], keep_open=True)  # this process beats for it
    make_run("dead", losses=[1.0], status="crashed")
    runs = RunsModel(runs_dir)
    runs.refresh()
    table = RunsTableModel(runs)
    rows = {table.run_at(r).name: r for r in range(table.rowCount())}  # type: ignore[union-attr]
    live, dead = rows["live"], rows["dead"]
    live_path, dead_path = str(runs_dir / "live"), str(runs_dir / "dead")
    assert status_cell(table, live) == "running"

    with qtbot.waitSignal(table.dataChanged):
        table.set_note(live_path, RowNote(status="stalled", message="no step for 2 min"))
    assert status_cell(table, live) == "stalled"
    background = status_cell(table, live, Qt.ItemDataRole.BackgroundRole)
    assert background == QColor(STATUS_BACKGROUNDS["stalled"])
    tip = status_cell(table, live, Qt.ItemDataRole.ToolTipRole)
    assert "no new step" in tip and "no step for 2 min" in tip
    table.set_note(live_path, RowNote(status="unresponsive"))
    assert status_cell(table, live) == "unresponsive"

    # A health note never hides that the run has ended.
    table.set_note(dead_path, RowNote(status="unresponsive"))
    assert status_cell(table, dead) == "crashed"
    table.set_note(dead_path, RowNote(restart_at=time.monotonic() + 4.4))
    assert status_cell(table, dead) == "crashed — restart in 4 s"
    with qtbot.waitSignal(table.dataChanged):
        table.tick()
    table.set_note(dead_path, RowNote(restart_at=time.monotonic() - 1))
    assert status_cell(table, dead) == "crashed — restarting"
    table.set_note(dead_path, RowNote(waiting_for_space=True))
    assert status_cell(table, dead) == "crashed — waiting for disk space"
    table.set_note(dead_path, None)
    table.set_note(live_path, None)
    assert status_cell(table, dead) == "crashed" and status_cell(table, live) == "running"
    table.detach()
    table.deleteLater()


# ---------------------------------------------------------------------- settings
def test_supervision_settings_make_the_policies() -> None:
    settings = AppSettings(
        max_restarts=5, restart_delay_s=7.5, heartbeat_timeout_s=4, hang_grace_s=0
    )
    restart, health = settings.restart_policy(), settings.health_policy()
    assert (restart.max_restarts, restart.backoff_initial) == (5, 7.5)
    assert (health.heartbeat_timeout, health.kill_grace) == (4.0, 0.0)
    assert AppSettings(restart_delay_s=900).restart_policy().backoff_max == 900
    defaults = AppSettings()
    assert (defaults.max_restarts, defaults.restart_delay_s, defaults.heartbeat_timeout_s,
            defaults.hang_grace_s, defaults.on_quit) == (3, 2.0, 10.0, 20.0, "ask")  # fmt: skip
    for key, bad in [("max_restarts", -1), ("max_restarts", 1.5), ("heartbeat_timeout_s", 0.2),
                     ("hang_grace_s", "long"), ("on_quit", "maybe")]:  # fmt: skip
        with pytest.raises(SettingsError) as info:
            defaults.replace(**{key: bad})
        assert info.value.key == key


def test_supervision_settings_load_and_show_in_the_dialog(qtbot: QtBot) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text('max_restarts = 0\non_quit = "leave"\nhang_grace_s = -3\n', encoding="utf-8")
    settings, warnings = load_settings()
    assert (settings.max_restarts, settings.on_quit, settings.hang_grace_s) == (0, "leave", 20.0)
    assert len(warnings) == 1 and "hang_grace_s = -3 is not allowed" in warnings[0]

    chosen = AppSettings(max_restarts=7, restart_delay_s=1.5, heartbeat_timeout_s=30,
                         hang_grace_s=45, on_quit="stop")  # fmt: skip
    dialog = SettingsDialog(chosen, save=False)
    qtbot.addWidget(dialog)
    assert dialog.validate() == chosen
    dialog.on_quit.setCurrentIndex(dialog.on_quit.findData("leave"))
    dialog.max_restarts.setValue(0)
    assert dialog.validate() == chosen.replace(on_quit="leave", max_restarts=0)


# ---------------------------------------------------------------------- quit signals
@pytest.mark.parametrize("via_loop", [True, False])
def test_quit_signals_reach_the_loop(
    aloop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, via_loop: bool
) -> None:
    if not via_loop:  # as on Windows: signal.signal and a wake-up timer instead

        def refuse(*_args: object) -> None:
            raise NotImplementedError

        monkeypatch.setattr(aloop, "add_signal_handler", refuse)
    before = {sig: signal.getsignal(sig) for sig in quit_signals()}
    got: list[str] = []
    signals = QuitSignals(aloop, got.append)
    try:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            os.kill(os.getpid(), sig)

        async def delivered() -> None:
            while len(got) < 3:
                await asyncio.sleep(0.02)

        aloop.run_until_complete(asyncio.wait_for(delivered(), 5))
    finally:
        signals.remove()
    assert got == ["SIGHUP", "SIGTERM", "SIGINT"]
    assert {sig: signal.getsignal(sig) for sig in quit_signals()} == before


# ---------------------------------------------------------------------- live children
@pytest.fixture
def sleepers(qtbot: QtBot, runs_dir: Path) -> Iterator[tuple[Supervisor, Recorder]]:
    """A supervisor whose "trainer" is a sleeping python: cheap live children."""
    supervisor = Supervisor(runs_dir, command=SLEEPER)
    rec = record(supervisor)
    yield supervisor, rec
    end_supervision(qtbot, supervisor)


def start_sleepers(qtbot: QtBot, supervisor: Supervisor, n: int) -> list[int]:
    folders = [supervisor.start(LaunchSpec("spirals", name=f"s{i}")) for i in range(n)]
    qtbot.waitUntil(lambda: all(supervisor.pid(f) for f in folders if f), timeout=20_000)
    return [pid for f in folders if f and (pid := supervisor.pid(f))]


def wait_dead(qtbot: QtBot, pids: list[int]) -> None:
    def dead() -> bool:
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
            except psutil.NoSuchProcess:
                continue
        return True

    qtbot.waitUntil(dead, timeout=20_000)
    for pid in pids:  # a child the supervisor let go is nobody's to reap but ours
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_the_quit_setting_answers_the_close_prompt(
    qtbot: QtBot, aloop: asyncio.AbstractEventLoop, sleepers: tuple[Supervisor, Recorder]
) -> None:
    supervisor, rec = sleepers
    parent = QWidget()
    qtbot.addWidget(parent)
    pids = start_sleepers(qtbot, supervisor, 2)
    close = close_with_children(parent, supervisor, timeout=10, choice=CloseChoice.STOP)
    assert aloop.run_until_complete(asyncio.wait_for(close, 30)) is True  # nobody asked
    assert not supervisor.running()
    assert sorted(code for code, _crashed in rec.finished.values()) == [-15, -15]
    assert not any(crashed for _code, crashed in rec.finished.values())
    assert sorted(state for _f, state, _m in rec.ended) == ["stopped", "stopped"]
    wait_dead(qtbot, pids)


def test_quit_under_us_stops_the_children_and_lets_them_go(
    qtbot: QtBot, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window(sleepers=True)
    pids = start_sleepers(qtbot, window.supervisor, 2)
    quit_under_us(window)  # aboutToQuit: no loop to await anything on
    assert not window.supervisor.running()
    wait_dead(qtbot, pids)  # asked to stop (SIGTERM: no run folder yet), not waited for


def test_quit_under_us_can_leave_the_children_running(
    qtbot: QtBot, make_window: Callable[..., MainWindow]
) -> None:
    window = make_window(AppSettings(on_quit="leave"), sleepers=True)
    pids = start_sleepers(qtbot, window.supervisor, 1)
    try:
        quit_under_us(window)
        assert not window.supervisor.running()
        qtbot.wait(300)
        assert psutil.Process(pids[0]).status() != psutil.STATUS_ZOMBIE
    finally:
        os.kill(pids[0], signal.SIGKILL)
        wait_dead(qtbot, pids)


def test_closing_unattended_stops_children_per_the_setting(
    qtbot: QtBot,
    aloop: asyncio.AbstractEventLoop,
    make_window: Callable[..., MainWindow],
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = make_window(AppSettings(on_quit="ask"), sleepers=True)  # a signal: "ask" stops
    pids = start_sleepers(qtbot, window.supervisor, 2)
    closed: list[bool] = []
    window.closed.connect(lambda: closed.append(True))

    async def scenario() -> None:
        window.close()  # the user's close: asks first
        while window._closing is None or not prompt():
            await asyncio.sleep(0.02)
        # A signal arrives while the question is open: it is withdrawn, the runs stopped.
        await window.close_unattended("SIGTERM received")

    def prompt() -> bool:
        return any(
            isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()
        )

    aloop.run_until_complete(asyncio.wait_for(scenario(), 30))
    assert not prompt()
    assert closed == [True] and window._closing is None
    assert not window.supervisor.running()
    assert "SIGTERM received: closing, stopping 2 live run(s)" in caplog.text
    wait_dead(qtbot, pids)


# ---------------------------------------------------------------------- the window's messages
def test_the_window_shows_restarts_and_ends(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun, make_window: Callable[..., MainWindow]
) -> None:
    make_run("flaky", losses=[1.0], status="crashed")
    window = make_window()
    folder = str(runs_dir / "flaky")
    qtbot.waitUntil(lambda: window.runs.index_of(folder) is not None, timeout=10_000)
    row = window.runs.index_of(folder)
    assert row is not None
    message = "run flaky attempt 1 crashed (killed by SIGKILL); restarting in 4.0 s"
    window.supervisor.restarting.emit(folder, 4.0, message)
    assert window.statusBar().currentMessage() == message
    assert "restart in" in window.table_model.status_text(window.table_model.run_at(row))  # type: ignore[arg-type]
    window.supervisor.health_changed.emit(folder, "unresponsive", "hung (no heartbeat): killed")
    assert "hung (no heartbeat): killed" in window.error_label.toolTip()
    window.supervisor.ended.emit(folder, "crashed", "run flaky crashed; gave up after 3 restarts")
    assert window.table_model.note(folder) is None
    assert window.error_label.toolTip() == "run flaky crashed; gave up after 3 restarts"
    window.apply_settings(window.settings.replace(max_restarts=9, hang_grace_s=1))
    assert window.supervisor.restart_policy.max_restarts == 9
    assert window.supervisor.health_policy.kill_grace == 1.0
    window.close()
