"""The main window over real run folders: listing, live updates, the chart, unreadable runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.main_window import MainWindow
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_model import ScanResult
from desktop_app.runs_table import COLUMNS, STATUS_COLUMN
from trainer.journal.writer import JournalWriter

MakeRun = Callable[..., JournalWriter]  # the make_run fixture (conftest.py)

pytestmark = pytest.mark.gui

LogLosses = Callable[[JournalWriter, int, Sequence[float]], None]
TIMEOUT_MS = 10_000


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path) -> Iterator[MainWindow]:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert win.charts._shut_down  # the charts' readers were closed


def wait_for(qtbot: QtBot, condition: Callable[[], object]) -> None:
    """Wait until ``condition()`` is true (it polls; fails after TIMEOUT_MS)."""
    qtbot.waitUntil(lambda: bool(condition()), timeout=TIMEOUT_MS)


def cells(win: MainWindow, column: int) -> dict[str, str]:
    """Run name -> the text of ``column``, as the table shows it."""
    model = win.table_model
    return {
        str(model.index(row, 0).data()): str(model.index(row, column).data())
        for row in range(model.rowCount())
    }


def drawn(win: MainWindow, name: str, key: str = "train/loss") -> list[float]:
    """The raw values the chart of ``key`` draws for run ``name`` (empty if none)."""
    plot = win.charts.plots.get(key)
    folder = Path(win.runs.runs_dir / name)
    if plot is None or folder not in plot.runs:
        return []
    item = plot.items_of(folder)[0]
    return [] if item.yData is None else [float(y) for y in item.yData]


def select(win: MainWindow, name: str) -> None:
    names = [str(win.proxy.index(r, 0).data()) for r in range(win.proxy.rowCount())]
    win.table.selectRow(names.index(name))


def test_lists_runs_and_follows_new_ones(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun, log_losses: LogLosses
) -> None:
    make_run("done", losses=[1.0, 0.5, 0.25], status="finished")
    make_run("broken", losses=[3.0], status="failed")
    live = make_run("live", losses=[2.0, 1.5], keep_open=True)

    expected = {"done": "finished", "broken": "failed", "live": "running"}
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN) == expected)
    assert cells(window, COLUMNS.index("Step"))["done"] == "2 / 100"
    assert cells(window, COLUMNS.index("train/loss"))["done"] == "0.25"
    assert cells(window, COLUMNS.index("Entry"))["live"] == "spirals"
    status = window.table_model.index(0, STATUS_COLUMN)
    assert status.data(Qt.ItemDataRole.ForegroundRole) is not None

    make_run("later", losses=[0.1], status="stopped")
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN).get("later") == "stopped")

    log_losses(live, 2, [0.75, 0.125])
    loss_col = COLUMNS.index("train/loss")
    wait_for(qtbot, lambda: cells(window, loss_col)["live"] == "0.125")
    assert cells(window, COLUMNS.index("Step"))["live"] == "3 / 100"


def test_an_empty_runs_dir_sizes_the_columns_once_not_every_scan(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_for(qtbot, lambda: window._listed)
    sized: list[int] = []
    monkeypatch.setattr(window.table, "resizeColumnsToContents", lambda: sized.append(1))
    window._columns_sized_at = -1  # as at the start
    for _ in range(3):  # a scan a second finds it still empty
        window._on_scan(ScanResult())
    assert len(sized) == 1
    make_run("first", losses=[1.0], status="finished")
    wait_for(qtbot, lambda: len(window.runs) == 1)
    assert len(sized) == 2  # the first rows: sized to them, then no more
    window._on_scan(ScanResult())
    assert len(sized) == 2


def test_chart_grows_as_the_writer_logs(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun, log_losses: LogLosses
) -> None:
    make_run("other", losses=[5.0] * 4)
    live = make_run("live", losses=[float(i) for i in range(10)], keep_open=True)
    wait_for(qtbot, lambda: window.table_model.rowCount() == 2)
    select(window, "live")
    wait_for(qtbot, lambda: len(drawn(window, "live")) == 10)
    assert window.charts.has_drawn

    log_losses(live, 10, [0.5] * 20)
    wait_for(qtbot, lambda: len(drawn(window, "live")) == 30)
    assert drawn(window, "live")[-2:] == [0.5, 0.5]

    select(window, "other")
    wait_for(qtbot, lambda: len(drawn(window, "other")) == 4)
    assert window.charts.runs == [(Path(window.runs.runs_dir / "other"), "other")]

    window.table.selectAll()  # compare both runs on the same charts
    wait_for(qtbot, lambda: len(window.charts.runs) == 2 and len(drawn(window, "live")) == 30)


def test_unreadable_run_is_listed_and_does_not_crash(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, make_run: MakeRun
) -> None:
    garbage = runs_dir / "garbage"
    garbage.mkdir()
    (garbage / "journal.sqlite").write_bytes(bytes(range(256)) * 64)
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN) == {"garbage": "unreadable"})
    tooltip = window.table_model.index(0, STATUS_COLUMN).data(Qt.ItemDataRole.ToolTipRole)
    assert "journal.sqlite" in tooltip and "SQLite" in tooltip

    # It is selected (the only run): the chart says so instead of crashing.
    wait_for(qtbot, lambda: "Cannot read" in window.charts.message.text())

    # The window keeps working.
    make_run("fine", losses=[1.0, 0.5])
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN).get("fine") == "finished")
    select(window, "fine")
    wait_for(qtbot, lambda: len(drawn(window, "fine")) == 2)
    assert window.error_label.text() == ""


def test_filter_sort_and_multi_select(qtbot: QtBot, window: MainWindow, make_run: MakeRun) -> None:
    make_run("alpha", losses=[3.0], status="finished")
    make_run("beta", losses=[1.0], status="failed")
    make_run("gamma", losses=[2.0], status="finished")
    wait_for(qtbot, lambda: window.proxy.rowCount() == 3)

    window.filter_edit.setText("fail")
    assert [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())] == ["beta"]
    window.filter_edit.clear()
    assert window.proxy.rowCount() == 3

    window.table.sortByColumn(COLUMNS.index("train/loss"), Qt.SortOrder.AscendingOrder)
    names = [window.proxy.index(r, 0).data() for r in range(window.proxy.rowCount())]
    assert names == ["beta", "gamma", "alpha"]

    window.table.selectAll()
    assert sorted(r.name for r in window.selected_runs()) == ["alpha", "beta", "gamma"]


def test_open_a_run_folder_from_elsewhere(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    from trainer.paths import RunPaths

    elsewhere = RunPaths(tmp_path / "elsewhere" / "visitor").create()
    writer = JournalWriter.create(
        elsewhere.journal, run_id="v", name="visitor", entry="charlm", kind="recipe", config={}
    )
    writer.log_scalars({"train/loss": 0.5}, 1)
    writer.set_status("finished")
    writer.close()
    assert window.open_folder(elsewhere.root)
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN).get("visitor") == "finished")

    not_a_run = tmp_path / "just-a-folder"
    not_a_run.mkdir()
    assert not window.open_folder(not_a_run)
    assert "is not a run folder" in window.error_label.text()


def test_open_selects_a_run_of_the_runs_dir(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun
) -> None:
    make_run("first", losses=[1.0])
    make_run("second", losses=[2.0])
    wait_for(qtbot, lambda: window.proxy.rowCount() == 2)
    from desktop_app.main import open_run

    open_run(window, "first")
    wait_for(qtbot, lambda: [r.name for r in window.selected_runs()] == ["first"])
    open_run(window, "nobody")
    assert "no run named 'nobody'" in window.error_label.text()


def test_the_runs_dir_vanishing_or_turning_read_only(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, make_run: MakeRun, tmp_path: Path
) -> None:
    make_run("kept", losses=[1.0])
    wait_for(qtbot, lambda: window.proxy.rowCount() == 1)
    moved = tmp_path / "moved-away"
    runs_dir.rename(moved)
    wait_for(qtbot, lambda: "does not exist (any more)" in window.error_label.text())
    assert window.proxy.rowCount() == 1  # what was listed stays, as last seen
    moved.rename(runs_dir)
    wait_for(qtbot, lambda: window.error_label.text() == "")

    from tests.fsutil import read_only

    with read_only(runs_dir):
        window.refresh()
        wait_for(qtbot, lambda: window.proxy.rowCount() == 1)  # still readable
        folder = window.launch(LaunchSpec("spirals", [], name="cannot-write"))
        assert folder is not None
        qtbot.waitUntil(lambda: not window.supervisor.running(), timeout=60_000)
        qtbot.waitUntil(lambda: window.console.line_count(folder) >= 1, timeout=10_000)
        assert "read-only" in window.console.visible_text()
    assert not (runs_dir / "cannot-write").exists()


def test_export_any_chart_as_png(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun, tmp_path: Path
) -> None:
    make_run("pic", losses=[3.0, 2.0, 1.0])
    wait_for(qtbot, lambda: len(drawn(window, "pic")) == 3)
    window._fill_png_menu()
    labels = [a.text() for a in window.png_menu.actions()]
    assert "All charts…" in labels and "train/loss…" in labels
    assert window.export_png(tmp_path / "one.png", "train/loss")
    assert window.export_png(tmp_path / "all.png", None)
    for name in ("one.png", "all.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not window.export_png(tmp_path / "nope.png", "no/such-key")
    assert "cannot export" in window.error_label.text()


def test_a_journal_of_a_newer_schema_is_listed_with_the_fix(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, make_run: MakeRun
) -> None:
    import sqlite3

    make_run("future", losses=[1.0])
    journal = runs_dir / "future" / "journal.sqlite"
    conn = sqlite3.connect(journal)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = journal.read_bytes()
    wait_for(qtbot, lambda: cells(window, STATUS_COLUMN).get("future") == "unreadable")
    row = window.runs.index_of(str(runs_dir / "future"))
    assert row is not None
    tooltip = window.table_model.index(row, STATUS_COLUMN).data(Qt.ItemDataRole.ToolTipRole)
    assert "upgrade TrainDesk" in tooltip
    assert journal.read_bytes() == before  # never rewritten


def test_export_csv_of_the_chosen_runs_and_keys(
    qtbot: QtBot, window: MainWindow, make_run: MakeRun, tmp_path: Path
) -> None:
    import csv

    make_run("r1", losses=[3.0, 2.0])
    make_run("r2", losses=[1.0])
    wait_for(qtbot, lambda: window.proxy.rowCount() == 2)
    window.table.selectAll()
    wait_for(qtbot, lambda: len(window.selected_runs()) == 2)
    out = tmp_path / "both.csv"
    window.controller.export(out, ["train/loss"])
    wait_for(qtbot, lambda: out.exists())
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["run", "key", "step", "value", "wall_time", "attempt"]
    assert sorted((r[0], r[2], r[3]) for r in rows[1:]) == [
        ("r1", "0", "3.0"), ("r1", "1", "2.0"), ("r2", "0", "1.0"),
    ]  # fmt: skip
