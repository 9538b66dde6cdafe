"""Comparing runs in the main window: run colours, config and result columns, the filter,
tags and notes, the config-vs-result views. Real run folders, offscreen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.main_window import MainWindow
from desktop_app.runs_table import NAME_COLUMN
from trainer.journal.writer import JournalWriter

MakeRun = Callable[..., JournalWriter]

pytestmark = pytest.mark.gui
TIMEOUT_MS = 10_000


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path) -> Iterator[MainWindow]:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def wait_for(qtbot: QtBot, condition: Callable[[], object]) -> None:
    qtbot.waitUntil(lambda: bool(condition()), timeout=TIMEOUT_MS)


def names(win: MainWindow) -> list[str]:
    return [str(win.proxy.index(r, NAME_COLUMN).data()) for r in range(win.proxy.rowCount())]


def select(win: MainWindow, *wanted: str) -> None:
    shown = names(win)
    win.table.clearSelection()
    for name in wanted:
        win.table.selectionModel().select(
            win.proxy.index(shown.index(name), 0),
            win.table.selectionModel().SelectionFlag.Select
            | win.table.selectionModel().SelectionFlag.Rows,
        )


def swatch(win: MainWindow, name: str) -> str:
    """The colour of the swatch in the run's name cell, as ``#rrggbb``."""
    row = names(win).index(name)
    icon = win.proxy.index(row, NAME_COLUMN).data(Qt.ItemDataRole.DecorationRole)
    return str(icon.pixmap(14, 14).toImage().pixelColor(7, 7).name())


def test_the_table_swatch_is_the_chart_line_colour(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun
) -> None:
    for n in range(3):
        make_run(f"run-{n}", losses=[1.0, 0.5 + n])
    wait_for(qtbot, lambda: len(names(window)) == 3)
    swatches = {name: swatch(window, name) for name in names(window)}
    assert len(set(swatches.values())) == 3
    select(window, "run-2", "run-0")  # selection order differs from creation order
    plot_key = "train/loss"
    wait_for(qtbot, lambda: plot_key in window.charts.plots)
    plot = window.charts.plots[plot_key]
    wait_for(qtbot, lambda: len(plot.runs) == 2)
    for name in ("run-0", "run-2"):
        folder = window.runs.runs_dir / name
        line = plot.items_of(folder)[1].opts["pen"].color().name()
        assert line == swatches[name] == window.charts.colors[folder]
        assert swatches[name] in window.charts.legend.text()
