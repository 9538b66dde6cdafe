"""Errors in plain sight and the small things, in the app: a failed launch shows its cause,
no display is one line, --open given several times, drawn status icons, colours on dark."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.main import EXIT_NO_DISPLAY, display_problem, open_run
from desktop_app.main_window import _REFRESH_TAG as REFRESH_TAG
from desktop_app.main_window import MainWindow
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_model import eta_seconds
from desktop_app.runs_table import STATUS_BACKGROUNDS, STATUS_COLUMN, STATUS_ICONS
from desktop_app.settings.theme import dark_palette
from desktop_app.status_icons import DARK_BACKGROUNDS, DARK_COLORS, LIGHT_COLORS, status_icon
from tests.fsutil import read_only
from tests.helpers import ROOT, TINY, trainer_env
from trainer.journal.writer import JournalWriter
from trainer.runs import RunSummary

pytestmark = pytest.mark.gui

MakeRun = Callable[..., JournalWriter]
TIMEOUT_MS = 120_000
#: Where the screenshots go: $TRAINDESK_SCREENSHOTS if set (for a person to look at).
SHOTS_ENV = "TRAINDESK_SCREENSHOTS"
FOREGROUND, DECORATION = Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.DecorationRole


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path) -> Iterator[MainWindow]:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.supervisor.kill_all()  # a test that failed half-way leaves nothing running
    qtbot.waitUntil(lambda: not win.supervisor.running(), timeout=TIMEOUT_MS)
    win.close()


def shot(window: MainWindow, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert window.grab().save(str(path))
    return path


# ------------------------------------------------------------------ a failed launch
def test_a_launch_with_a_bad_value_shows_the_trainers_message_and_console(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, tmp_path: Path
) -> None:
    panel = window.launch_failure
    assert not panel.isVisible()
    window.launch(LaunchSpec("spirals", ["lr=fast"], name="badlr"))
    qtbot.waitUntil(panel.isVisible, timeout=TIMEOUT_MS)
    cause = "config key 'lr': 'fast' is a string, expected a number"
    assert panel.title.text() == "Launch of badlr failed: it never started"
    assert cause in panel.message.text() and "not restarted" in panel.message.text()
    assert f"error: {cause}" in panel.tail.toPlainText()
    assert cause in window.error_label.toolTip()  # the status bar says why, not "exit code 2"
    assert not window.supervisor.is_supervised(str(runs_dir / "badlr"))  # no restart coming
    assert not (runs_dir / "badlr").exists()
    path = shot(window, "launch-failure.png", tmp_path)
    assert path.stat().st_size > 5000

    panel.console_button.click()  # the whole console of the launch, where runs' consoles are
    assert window.tabs.currentWidget() is window.console
    assert f"error: {cause}" in window.console.visible_text()

    fine = window.launch(LaunchSpec(str(TINY), ["max_steps=3"], name="fine"))
    assert fine is not None and not panel.isVisible()  # the next launch: the old one is gone
    qtbot.waitUntil(lambda: not window.supervisor.running(), timeout=TIMEOUT_MS)
    assert not panel.isVisible()


def test_a_read_only_runs_dir_is_explained_without_a_traceback_or_restarts(
    qtbot: QtBot, window: MainWindow, runs_dir: Path
) -> None:
    panel = window.launch_failure
    with read_only(runs_dir):
        window.launch(LaunchSpec(str(TINY), ["max_steps=3"], name="nowhere"))
        qtbot.waitUntil(panel.isVisible, timeout=TIMEOUT_MS)
    assert "the runs directory is read-only" in panel.message.text()
    assert "Traceback" not in panel.tail.toPlainText()
    assert window.supervisor.pending() == [] and window.supervisor.running() == []
    supervision_ended = window.supervisor.supervision(str(runs_dir / "nowhere")) is None
    assert supervision_ended


# ------------------------------------------------------------------ start-up
def test_no_display_is_one_line_and_a_normal_exit_code(tmp_path: Path) -> None:
    env = trainer_env()
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--quit-after", "1"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == EXIT_NO_DISPLAY, done.stderr  # not -6 (SIGABRT)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("traindesk: no display to open a window")
    assert "trainer run" in lines[0]


def test_a_display_qt_cannot_open_exits_with_one_line_instead_of_sigabrt() -> None:
    env = trainer_env(DISPLAY=":97", QT_QPA_PLATFORM="xcb")  # no X server there
    env.pop("WAYLAND_DISPLAY", None)
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--quit-after", "1"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == EXIT_NO_DISPLAY, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("traindesk: cannot open a window (")


def test_display_problem_reads_the_environment() -> None:
    assert display_problem("linux", {}) is not None
    assert display_problem("linux", {"DISPLAY": ":0"}) is None
    assert display_problem("linux", {"WAYLAND_DISPLAY": "wayland-0"}) is None
    assert display_problem("linux", {"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display_problem("linux", {"QT_QPA_PLATFORM": "xcb"}) is not None
    assert display_problem("darwin", {}) is None and display_problem("win32", {}) is None


def test_open_given_several_times_shows_every_run(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun
) -> None:
    for name in ("a", "b", "c"):
        make_run(name, losses=[1.0, 0.5])
    qtbot.waitUntil(lambda: window.proxy.rowCount() == 3, timeout=TIMEOUT_MS)
    for i, name in enumerate(("a", "c")):  # as `traindesk --open a --open c` does
        open_run(window, name, add=i > 0)
    qtbot.waitUntil(
        lambda: sorted(r.name for r in window.selected_runs()) == ["a", "c"], timeout=TIMEOUT_MS
    )
    open_run(window, "b")  # without add: that run alone
    qtbot.waitUntil(lambda: [r.name for r in window.selected_runs()] == ["b"], timeout=TIMEOUT_MS)


# ------------------------------------------------------------------ icons and colours
def _luminance(color: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    q = QColor(color)
    r, g, b = (channel(v) for v in (q.redF(), q.greenF(), q.blueF()))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_status_colours_are_readable_on_light_and_dark() -> None:
    dark = dark_palette()
    for background in (dark.base().color().name(), dark.alternateBase().color().name()):
        for status, color in DARK_COLORS.items():
            assert contrast(color, background) >= 4.5, (status, color, background)
    for status, color in LIGHT_COLORS.items():
        assert contrast(color, "#ffffff") >= 4.5, (status, color)
    for status, tint in DARK_BACKGROUNDS.items():  # the tinted cells keep their text legible
        assert contrast(DARK_COLORS[status], tint) >= 3.0, status
    assert set(DARK_BACKGROUNDS) == set(STATUS_BACKGROUNDS)


def test_status_icons_are_drawn_not_glyphs_fonts_lack(qapp: QApplication) -> None:
    assert not {"\u23f8", "\u23f9"} & set("".join(STATUS_ICONS.values()))
    shapes = {}
    for status in STATUS_ICONS:
        image = status_icon(status, dark=False).pixmap(16, 16).toImage()
        painted = [(x, y) for x in range(16) for y in range(16) if image.pixelColor(x, y).alpha()]
        assert len(painted) > 10, status
        shapes[status] = frozenset(painted)
    for a, b in (("running", "paused"), ("paused", "stopped"), ("finished", "failed")):
        assert shapes[a] != shapes[b]  # a shape per status, not colour alone


def test_the_runs_table_uses_dark_colours_on_a_dark_theme(
    qtbot: QtBot, qapp: QApplication, window: MainWindow, make_run: MakeRun
) -> None:
    make_run("done", losses=[1.0])
    qtbot.waitUntil(lambda: window.table_model.rowCount() == 1, timeout=TIMEOUT_MS)
    index = window.table_model.index(0, STATUS_COLUMN)
    light = window.table_model.data(index, FOREGROUND)
    assert QColor(light).name() == LIGHT_COLORS["finished"]
    saved = qapp.palette()
    qapp.setPalette(dark_palette())
    try:
        dark = window.table_model.data(index, FOREGROUND)
        assert QColor(dark).name() == DARK_COLORS["finished"]
        assert isinstance(window.table_model.data(index, DECORATION), QIcon)
    finally:
        qapp.setPalette(saved)


def test_a_paused_run_shows_no_eta() -> None:
    def summary(status: str) -> RunSummary:
        return RunSummary(
            id="x", name="x", path="/x", status=status, step=50, max_steps=100, attempt=1,
            entry="spirals", created=1000.0, updated=1100.0, exit_reason=None, latest={},
        )  # fmt: skip

    assert eta_seconds(summary("running"), now=1100.0) == pytest.approx(100.0)
    assert eta_seconds(summary("paused"), now=1100.0) is None


def test_a_runs_dir_given_that_does_not_exist_is_said_not_created(
    qtbot: QtBot, tmp_path: Path
) -> None:
    typo = tmp_path / "rnus"
    win = MainWindow(typo, create_runs_dir=False)  # as `traindesk --runs-dir rnus` makes it
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: "does not exist" in win.error_label.text(), timeout=TIMEOUT_MS)
        assert str(typo) in win.error_label.toolTip()
        # A listing that finds no folder keeps this message (not "does not exist (any more)").
        failed: list[BaseException] = []
        handler = win._on_refresh_error
        win._on_refresh_error = lambda exc: (failed.append(exc), handler(exc))  # type: ignore[method-assign]
        qtbot.waitUntil(lambda: not win.io.busy(REFRESH_TAG), timeout=TIMEOUT_MS)
        win.refresh()
        qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT_MS)
        assert "check --runs-dir for a typo" in win.error_label.toolTip()
        assert not typo.exists()
        # Once the folder exists (a run launched from the app makes it), the message goes.
        typo.mkdir()
        qtbot.waitUntil(lambda: not win.io.busy(REFRESH_TAG), timeout=TIMEOUT_MS)
        win.refresh()
        qtbot.waitUntil(lambda: win.error_label.toolTip() == "", timeout=TIMEOUT_MS)
    finally:
        win.close()


def test_a_run_launched_by_the_app_prints_progress_lines_to_its_console(
    qtbot: QtBot, window: MainWindow, runs_dir: Path
) -> None:
    # 0.5 s a step for 14 steps: the trainer's plain progress line (every 5 s) comes at least
    # once before it ends, on the pipe to the app (the app passes no --quiet).
    folder = window.launch(LaunchSpec(str(TINY), ["max_steps=14", "step_sleep=0.5"], name="chatty"))
    assert folder is not None
    qtbot.waitUntil(lambda: not window.supervisor.running(), timeout=TIMEOUT_MS)
    window.console.show_run(folder)
    lines = [line for line in window.console.visible_text().splitlines() if "[chatty] step" in line]
    assert lines, window.console.visible_text()
    assert all("/14 (" in line for line in lines)


def test_the_health_dock_shows_a_slow_runs_rate_as_seconds_per_step() -> None:
    from desktop_app.health.panel import _rate_text

    assert _rate_text(None) == "—"
    assert _rate_text(12.34) == "12.3"
    assert _rate_text(1 / 42) == "42 s/step"
