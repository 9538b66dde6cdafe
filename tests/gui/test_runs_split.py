"""The split between the runs table and the charts (desktop_app/runs_split.py): the table first
gets its rows' height, as far as the charts keep theirs; a dragged split is kept for the next
start, in layout.json beside the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.main_window import MainWindow
from desktop_app.runs_split import (
    MIN_ROWS,
    RUN_VIEW_HEIGHT,
    first_height,
    layout_path,
    load_table_height,
    save_table_height,
)
from tests.gui.conftest import MakeRun

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


def test_the_first_height_fits_the_rows_as_far_as_the_charts_keep_theirs() -> None:
    total, chrome, row = 1000, 60, 22
    assert first_height(total, chrome, 0, row) == chrome + MIN_ROWS * row
    assert first_height(total, chrome, 5, row) == chrome + 5 * row
    most = first_height(total, chrome, 500, row)
    assert total - most >= RUN_VIEW_HEIGHT and (most - chrome) % row == 0
    assert total - most - row < RUN_VIEW_HEIGHT  # one more row would cut into the charts
    assert first_height(400, chrome, 50, row) == chrome + MIN_ROWS * row  # a tiny window


def test_a_saved_height_is_read_back_and_a_bad_file_is_none(tmp_path: Path) -> None:
    path = tmp_path / "layout.json"
    assert load_table_height(path) is None
    save_table_height(321, path)
    assert load_table_height(path) == 321
    assert path.stat().st_mode & 0o777 == 0o600
    for bad in ("not json", "[]", '{"runs_table_height": "x"}', '{"runs_table_height": -3}',
                '{"runs_table_height": true}'):  # fmt: skip
        path.write_text(bad, encoding="utf-8")
        assert load_table_height(path) is None, bad


def _window(qtbot: QtBot, runs_dir: Path, rows: int) -> MainWindow:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.table_model.rowCount() == rows, timeout=TIMEOUT_MS)
    return win


def test_the_table_shows_its_rows_and_a_dragged_split_is_kept(
    qtbot: QtBot, runs_dir: Path, make_run: MakeRun
) -> None:
    for n in range(4):
        make_run(f"run-{n}", losses=[1.0, 0.5])
    win = _window(qtbot, runs_dir, 4)
    table = win.table
    # Rows one line high; all four in sight, and no more room than they need.
    assert table.verticalHeader().defaultSectionSize() <= table.fontMetrics().height() + 10
    qtbot.waitUntil(
        lambda: all(
            table.viewport().rect().contains(table.visualRect(win.proxy.index(r, 0)))
            for r in range(4)
        ),
        timeout=TIMEOUT_MS,
    )
    first = win.splitter.sizes()[0]
    assert first < 200

    # The user drags the split lower: the table keeps that height, at the next start too.
    win.splitter.moveSplitter(first + 150, 1)
    assert win.splitter.sizes()[0] == first + 150
    qtbot.waitUntil(lambda: layout_path().exists(), timeout=TIMEOUT_MS)
    assert json.loads(layout_path().read_text())["runs_table_height"] == first + 150
    win.resize(1300, 820)  # a resize keeps the user's height
    qtbot.waitUntil(lambda: win.width() == 1300, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert win.splitter.sizes()[0] == first + 150
    win.close()

    again = _window(qtbot, runs_dir, 4)
    qtbot.waitUntil(lambda: again.splitter.sizes()[0] == first + 150, timeout=TIMEOUT_MS)
    again.close()
