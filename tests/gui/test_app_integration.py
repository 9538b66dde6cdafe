"""The whole window with real trainer processes: launch from the app, attach a CLI run,
control it, and a whole-UI run that must never import torch."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.main_window import MainWindow
from desktop_app.runs_ctl.controls import Action
from desktop_app.runs_ctl.spec import LaunchSpec
from tests.helpers import NOTORCH, ROOT, TINY, spawn, trainer_env
from trainer.runs import summarize

pytestmark = pytest.mark.gui
TIMEOUT_MS = 90_000


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path) -> Iterator[MainWindow]:
    win = MainWindow(runs_dir)
    win.show()
    yield win
    win.supervisor.kill_all()
    win._close_confirmed = True
    win.close()


def drawn_points(win: MainWindow, folder: Path, key: str = "train/loss") -> int:
    plot = win.charts.plots.get(key)
    if plot is None or folder not in plot.runs:
        return 0
    item = plot.items_of(folder)[0]
    return 0 if item.xData is None else len(item.xData)


def test_launch_watch_and_stop_a_run_from_the_window(
    qtbot: QtBot, window: MainWindow, runs_dir: Path
) -> None:
    spec = LaunchSpec(str(TINY), ["max_steps=3000", "step_sleep=0.01"], name="gui-run")
    folder = window.launch(spec)
    assert folder == str(runs_dir / "gui-run")
    run = Path(folder)
    qtbot.waitUntil(lambda: drawn_points(window, run) >= 20, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.console.line_count(folder) >= 1, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.controller.actions[Action.STOP].isEnabled(), timeout=TIMEOUT_MS)
    window.controller.actions[Action.STOP].trigger()
    qtbot.waitUntil(lambda: summarize(run).status == "stopped", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.supervisor.running(), timeout=TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: window.controller.actions[Action.RESTART].isEnabled(), timeout=TIMEOUT_MS
    )


def test_a_run_started_by_the_cli_is_attached_and_controlled(
    qtbot: QtBot, window: MainWindow, runs_dir: Path
) -> None:
    proc = spawn("run", str(TINY), "--name", "cli-run", "--set", "max_steps=3000",
                 "--set", "step_sleep=0.01")  # fmt: skip
    try:
        run = runs_dir / "cli-run"
        qtbot.waitUntil(lambda: window.runs.index_of(str(run)) is not None, timeout=TIMEOUT_MS)
        window.open_folder(run)
        qtbot.waitUntil(lambda: drawn_points(window, run) >= 20, timeout=TIMEOUT_MS)
        # Its console continues from the run's log files.
        qtbot.waitUntil(lambda: window.console.line_count(str(run)) >= 1, timeout=TIMEOUT_MS)
        qtbot.waitUntil(
            lambda: window.controller.actions[Action.PAUSE].isEnabled(), timeout=TIMEOUT_MS
        )
        window.controller.actions[Action.PAUSE].trigger()
        qtbot.waitUntil(lambda: summarize(run).status == "paused", timeout=TIMEOUT_MS)
        qtbot.waitUntil(
            lambda: window.controller.actions[Action.RESUME].isEnabled(), timeout=TIMEOUT_MS
        )
        window.controller.actions[Action.RESUME].trigger()
        qtbot.waitUntil(lambda: summarize(run).status == "running", timeout=TIMEOUT_MS)
        window.controller.actions[Action.STOP].trigger()
        proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert summarize(run).status == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_leaving_runs_and_coming_back(runs_dir: Path) -> None:
    """The app exits leaving its run training; the run finishes alone; a new app attaches it.
    (The run needs no torch: nothing here stops, checkpoints or resumes it.)"""
    env = trainer_env(QT_QPA_PLATFORM="offscreen")
    first = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--runs-dir", str(runs_dir), "--launch", str(NOTORCH),
         "--set", "max_steps=300", "--set", "step_sleep=0.01", "--name", "left",
         "--quit-after", "4"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    run = runs_dir / "left"
    assert summarize(run).status in {"starting", "running", "finished"}
    from tests.helpers import wait_until

    wait_until(lambda: summarize(run).status == "finished", 180, "the left run to finish")
    shot = runs_dir.parent / "again.png"
    again = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--runs-dir", str(runs_dir), "--open", "left",
         "--screenshot", str(shot), "--quit-after", "3"],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert shot.stat().st_size > 5000


WHOLE_UI = r"""
import os, sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.main_window import MainWindow
from desktop_app.runs_ctl.spec import LaunchSpec
runs = Path(sys.argv[1])
win = MainWindow(runs)
win.show()
win.launch(LaunchSpec(sys.argv[2], ["max_steps=60"], name="probe"))
deadline = time.monotonic() + 120
while time.monotonic() < deadline and not win.charts.has_drawn:
    app.processEvents()
    time.sleep(0.02)
win.filter_edit.setText("probe"); win.filter_edit.clear()
from PySide6.QtCore import Qt
win.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
win.table.selectAll()
win.charts.set_smoothing("ma", 5); win.charts.set_x_mode("wall"); win.charts.set_log_y(True)
win.tabs.setCurrentIndex(1)
dialog = win.controller.new_run(); dialog.close()
settings = win.open_settings(); settings.close()
win.grab()
while win.supervisor.running() and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.02)
win._close_confirmed = True
win.close()
print("HAS_DRAWN", win.charts.has_drawn)
print("TORCH", "torch" in sys.modules)
"""


def test_the_whole_ui_never_imports_torch(runs_dir: Path) -> None:
    # The run it launches imports no torch either (tests.helpers.NOTORCH): what is checked is
    # the app's own process, and a run that trains with torch costs 2 s of CPU more.
    proc = subprocess.run(
        [sys.executable, "-c", WHOLE_UI, str(runs_dir), str(NOTORCH)],
        capture_output=True, text=True, timeout=240,
        env=trainer_env(QT_QPA_PLATFORM="offscreen"), cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "HAS_DRAWN True" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "TORCH False" in proc.stdout
    assert os.path.isdir(runs_dir / "probe")
