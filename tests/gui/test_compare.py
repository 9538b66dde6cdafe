"""Comparing runs in the main window: run colours, config and result columns, the filter,
tags and notes, the config-vs-result views. Real run folders, offscreen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.compare.scatter_view import ConfigView
from desktop_app.main_window import MainWindow
from desktop_app.runs_table import NAME_COLUMN
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

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


def sweep_run(
    runs_dir: Path,
    name: str,
    config: dict[str, object],
    losses: list[float],
    *,
    accs: list[float] | None = None,
    status: str = "finished",
) -> None:
    """A finished run of a sweep: ``config`` journaled, val/loss (and val/acc) logged."""
    paths = RunPaths(runs_dir / name).create()
    writer = JournalWriter.create(
        paths.journal, run_id=f"id-{name}", name=name, entry="spirals", kind="recipe",
        config=config, max_steps=len(losses),
    )  # fmt: skip
    writer.set_status("running")
    for step, loss in enumerate(losses):
        values = {"val/loss": loss, "train/loss": loss * 1.1}
        if accs is not None:
            values["val/acc"] = accs[step]
        writer.log_scalars(values, step)
    writer.set_status(status, exit_reason=status, step=len(losses) - 1)
    writer.close()


def headers(win: MainWindow) -> list[str]:
    model = win.table_model
    return [str(model.headerData(c, Qt.Orientation.Horizontal)) for c in range(model.columnCount())]


def column_cells(win: MainWindow, title: str) -> dict[str, str]:
    """Run name -> the text of the column titled ``title``, in the proxy's order."""
    col = headers(win).index(title)
    return {
        str(win.proxy.index(r, NAME_COLUMN).data()): str(win.proxy.index(r, col).data())
        for r in range(win.proxy.rowCount())
    }


@pytest.fixture
def sweep(runs_dir: Path) -> Path:
    base = {"model": {"width": 64, "act": "relu"}, "seed": 0, "data": "spirals"}
    sweep_run(runs_dir, "a", {**base, "optim": {"lr": 1e-2}}, [1.0, 0.4, 0.5])
    sweep_run(runs_dir, "b", {**base, "optim": {"lr": 1e-3}}, [1.0, 0.7, 0.6])
    sweep_run(runs_dir, "c", {**base, "optim": {"lr": 1e-4}, "seed": 1}, [1.0, 0.9, 0.8])
    return runs_dir


def test_the_table_shows_only_the_config_keys_that_differ(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    wait_for(qtbot, lambda: "optim.lr" in headers(window))
    shown = headers(window)
    assert "seed" in shown
    assert not {"model.width", "model.act", "data"} & set(shown)
    assert column_cells(window, "optim.lr") == {"c": "0.0001", "b": "0.001", "a": "0.01"}
    # Results: last and best (the lowest, for a loss) from the journal's summaries.
    wait_for(qtbot, lambda: column_cells(window, "val/loss best (min)")["a"] == "0.4")
    assert column_cells(window, "val/loss last")["a"] == "0.5"
    assert column_cells(window, "val/loss best (min)") == {"a": "0.4", "b": "0.6", "c": "0.8"}


def test_sort_by_a_config_column_and_filter(qtbot: QtBot, sweep: Path, window: MainWindow) -> None:
    wait_for(qtbot, lambda: "optim.lr" in headers(window))
    window.table.sortByColumn(headers(window).index("optim.lr"), Qt.SortOrder.AscendingOrder)
    assert names(window) == ["c", "b", "a"]
    window.table.sortByColumn(headers(window).index("optim.lr"), Qt.SortOrder.DescendingOrder)
    assert names(window) == ["a", "b", "c"]
    wait_for(qtbot, lambda: column_cells(window, "val/loss best (min)")["c"] == "0.8")
    cases = {
        "lr>5e-4": ["a", "b"],
        "optim.lr<=1e-3 seed:0": ["b"],
        "status:finished name~A": ["a"],
        "val/loss.best<0.65": ["a", "b"],
        "-seed=1": ["a", "b"],
        "nothing-like-it": [],
        "": ["a", "b", "c"],
    }
    for text, wanted in cases.items():
        window.filter_edit.setText(text)
        assert sorted(names(window)) == wanted, text
        assert window.filter_problem.text() == "", text
    window.filter_edit.setText("lr>1e-3")
    for bad in ("lr>", 'note~"open', "lr>>2"):
        window.filter_edit.setText(bad)  # bad text: a message, the last filter stays
        assert window.filter_problem.text(), bad
        assert "\n" not in window.filter_problem.text()
        assert sorted(names(window)) == ["a"]
    window.filter_edit.setText("lrr>1")
    assert "no column or config key 'lrr'" in window.filter_problem.text()
    assert names(window) == []


def test_tags_and_notes_persist_in_the_run_folder_and_survive_a_restart(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    wait_for(qtbot, lambda: len(names(window)) == 3)
    run = next(r for r in window.runs.runs if r.name == "b")
    dialog = window.compare.edit_annotations(run)
    dialog.tags.setText("baseline, lr-sweep baseline")
    dialog.note.setPlainText("the one to beat")
    dialog._save()  # the Save button
    path = sweep / "b" / "annotations.json"
    wait_for(qtbot, path.exists)
    assert path.stat().st_mode & 0o777 == 0o600
    assert column_cells(window, "Tags")["b"] == "baseline, lr-sweep"
    window.filter_edit.setText("tag:baseline")
    assert names(window) == ["b"]
    window.close()

    again = MainWindow(sweep)
    qtbot.addWidget(again)
    try:
        wait_for(qtbot, lambda: column_cells(again, "Tags").get("b") == "baseline, lr-sweep")
        assert again.table_model.compare.annotations(str(sweep / "b")).note == "the one to beat"
        again.filter_edit.setText("note~beat")
        assert names(again) == ["b"]
    finally:
        again.close()


def test_the_next_start_reads_no_ended_runs_journal_for_its_results(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    best = "val/loss best (min)"
    wait_for(qtbot, lambda: best in headers(window) and column_cells(window, best)["c"] == "0.8")
    cache = window.compare.cache
    assert cache.reads == 3
    wait_for(qtbot, lambda: cache.path is not None and cache.path.exists() and not cache.dirty)
    window.close()

    again = MainWindow(sweep)
    qtbot.addWidget(again)
    try:
        wanted = {"a": "0.4", "b": "0.6", "c": "0.8"}
        wait_for(qtbot, lambda: best in headers(again) and column_cells(again, best) == wanted)
        assert again.compare.cache.reads == 0
    finally:
        again.close()


def test_header_menu_adds_and_hides_columns_and_the_choice_persists(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    wait_for(qtbot, lambda: "optim.lr" in headers(window))
    window.compare.toggle_config("model.width", True)
    window.compare.toggle_config("seed", False)
    window.compare.set_direction("val/loss", "max")
    assert "model.width" in headers(window) and "seed" not in headers(window)
    wait_for(qtbot, lambda: column_cells(window, "val/loss best (max)")["a"] == "1")
    menu = window.compare.header_menu(headers(window).index("optim.lr"))
    assert menu.actions()[0].text() == "Hide “optim.lr”"
    window.close()

    again = MainWindow(sweep)
    qtbot.addWidget(again)
    try:
        wait_for(qtbot, lambda: len(names(again)) == 3 and "optim.lr" in headers(again))
        assert "model.width" in headers(again) and "val/loss best (max)" in headers(again)
        assert "seed" not in headers(again)
    finally:
        again.close()


def show_config_view(qtbot: QtBot, win: MainWindow) -> ConfigView:
    wait_for(qtbot, lambda: len(names(win)) == 3 and "optim.lr" in headers(win))
    win.tabs.setCurrentWidget(win.config_view)
    view = win.config_view
    wait_for(qtbot, lambda: view.x_key.count() > 0)  # filled on its first redraw
    view.x_key.setCurrentText("optim.lr")
    return view


def test_the_scatter_has_one_point_per_run_and_a_click_selects_it(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    view = show_config_view(qtbot, window)
    view.y_metric.setCurrentText("val/loss")
    view.kind.setCurrentText("best")
    wait_for(qtbot, lambda: len(view.points) == 3 and {p.y for p in view.points} == {0.4, 0.6, 0.8})
    where = {p.name: (p.x, p.y) for p in view.points}
    assert where == {"a": (pytest.approx(-2), 0.4), "b": (pytest.approx(-3), 0.6),
                     "c": (pytest.approx(-4), 0.8)}  # fmt: skip
    assert view._x_ticks.axis is not None and view._x_ticks.axis.kind == "log"  # 1e-4..1e-2
    colours = {p.name: p.colour for p in view.points}
    assert colours == {name: swatch(window, name) for name in ("a", "b", "c")}
    # A click on b's point selects b in the table (and so in the charts).
    plot = view.scatter_plot
    vb = plot.getPlotItem().vb
    wait_for(qtbot, lambda: not view._timer.isActive() and vb.viewRect().contains(*where["b"]))
    scene_pos = vb.mapViewToScene(pg.Point(*where["b"]))
    pixel = plot.mapFromScene(scene_pos)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pixel)
    wait_for(qtbot, lambda: [r.name for r in window.selected_runs()] == ["b"])
    assert str(sweep / "b") in view._selected
    wait_for(qtbot, lambda: window.charts.runs and window.charts.runs[0][1] == "b")
    # The filter applies: only the listed runs are drawn.
    window.filter_edit.setText("seed:0")
    wait_for(qtbot, lambda: len(view.points) == 2)


def test_parallel_coordinates_draw_one_line_per_run(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    view = show_config_view(qtbot, window)
    view.pages.setCurrentIndex(1)
    wait_for(qtbot, lambda: len(view.lines) == 3)
    assert [a.name for a in view.axes][:-1] == ["optim.lr", "seed"]
    assert view.axes[-1].name.startswith("val/loss")
    assert len(view._line_items) == 3
    by_name = {line.name: line for line in view.lines}
    assert by_name["a"].ys[0] == 1.0 and by_name["c"].ys[0] == 0.0  # log lr, ends of the axis
    assert by_name["c"].ys[1] == 1.0  # seed 1 of 0..1
    view.set_parallel_keys(["seed"])
    wait_for(qtbot, lambda: len(view.axes) == 2)
    select(window, "c")
    item = view._line_items[[line.name for line in view.lines].index("c")]
    wait_for(qtbot, lambda: item.opts["pen"].width() == 3)


def test_the_config_view_follows_the_theme(qtbot: QtBot, sweep: Path, window: MainWindow) -> None:
    from desktop_app.settings.theme import DARK, LIGHT

    view = show_config_view(qtbot, window)
    for theme in (DARK, LIGHT):
        view.set_theme(theme)
        for plot in (view.scatter_plot, view.parallel_plot):
            assert plot.backgroundBrush().color().name() == theme.background.lower()


def test_the_scatter_axes_say_their_values_without_a_scale(
    qtbot: QtBot, sweep: Path, window: MainWindow
) -> None:
    """The tick labels are the values themselves: small values get no "(x0.001)" beside the
    axis name, which would read as a scale the labels do not have."""
    view = show_config_view(qtbot, window)
    view.y_metric.setCurrentText("val/loss")
    wait_for(qtbot, lambda: len(view.points) == 3)
    view.scatter_plot.setYRange(0.001, 0.02, padding=0)
    view.scatter_plot.setXRange(0.001, 0.02, padding=0)
    qtbot.wait(50)
    for ticks in (view._x_ticks, view._y_ticks):
        assert ticks.autoSIPrefixScale == 1.0
        assert "(x" not in ticks.labelString(), ticks.labelString()


def test_a_log_axis_ticks_at_one_two_and_five_times_powers_of_ten(qapp: object) -> None:
    from desktop_app.compare.scatter import make_axis
    from desktop_app.compare.scatter_view import _Ticks

    ticks = _Ticks("left")
    ticks.set_axis(make_axis("lr", [1e-4, 1e-2]))
    values = [v for _spacing, level in ticks.tickValues(-4.0, -2.0, 400) for v in level]
    labels = sorted(ticks.tickStrings(values, 1.0, 1.0), key=float)
    assert labels == ["0.0001", "0.0002", "0.0005", "0.001", "0.002", "0.005", "0.01"]
