"""The charts as a grid: columns by width, the key filter, aligned axes, the crosshair on every
chart, log y and outliers per chart, the smoothing rule, runs grouped by a config key."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.charts.chart_theme import DARK_CHARTS
from desktop_app.charts.groups import MIN_CHART_WIDTH, columns_for
from desktop_app.charts.panel import ChartsPanel
from desktop_app.charts.plot import MetricPlot
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000
KEYS = ("train/loss", "train/lr", "train/big", "val/loss", "val/acc", "perf/steps_per_s")


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[ChartsPanel]:
    io = BackgroundIO()
    widget = ChartsPanel(io)
    qtbot.addWidget(widget)
    widget.resize(1000, 1400)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    io.close()
    widget.shutdown()


MakeRun = Callable[..., Path]


@pytest.fixture
def make_run(runs_dir: Path) -> MakeRun:
    """``make_run(name, {key: values}, config, stride=1)``: a finished run's folder, values at
    steps 0, stride, 2 * stride, ..."""

    def make(
        name: str, curves: dict[str, Any], config: dict[str, Any] | None = None, stride: int = 1
    ) -> Path:
        paths = RunPaths(runs_dir / name).create()
        writer = JournalWriter.create(
            paths.journal, run_id=name, name=name, entry="t", kind="api", config=config or {}
        )
        try:
            writer.set_status("running")
            n = max(len(v) for v in curves.values())
            for step in range(n):
                row = {k: float(v[step]) for k, v in curves.items() if step < len(v)}
                writer.log_scalars(row, step * stride)
            writer.set_status("finished", exit_reason="finished", step=(n - 1) * stride)
        finally:
            writer.close()
        return paths.root

    return make


def wait_for(qtbot: QtBot, condition: Callable[[], object]) -> None:
    qtbot.waitUntil(lambda: bool(condition()), timeout=TIMEOUT_MS)


def six_charts(make_run: MakeRun, name: str = "six", scale: float = 1.0) -> Path:
    steps = np.arange(100, dtype=float)
    curves = {key: (steps + 1) * scale for key in KEYS}
    curves["train/big"] = steps * 1e6 + 1e6  # wide tick labels
    curves["train/lr"] = np.where(steps < 50, 1e-3, 1e-4)
    return make_run(name, curves)


def loaded(panel: ChartsPanel, n: int = len(KEYS)) -> bool:
    """``n`` charts, those shown drawn."""
    shown = [p for p in panel.plots.values() if p.isVisible()]
    return len(panel.plots) == n and all(
        p.items_of(f)[0].xData is not None for p in shown for f in p.runs
    )


def same_width_per_column(panel: ChartsPanel) -> bool:
    """Charts of one column are equally wide (so their right edges line up too)."""
    widths: dict[int, set[int]] = {}
    for plot in panel.shown_plots:
        widths.setdefault(plot.mapTo(panel, QPoint(0, 0)).x(), set()).add(plot.width())
    return all(len(w) == 1 for w in widths.values())


def settle(qtbot: QtBot, panel: ChartsPanel) -> None:
    """Wait until every chart is drawn and the grid laid out."""
    wait_for(qtbot, lambda: loaded(panel))
    wait_for(qtbot, lambda: panel.charts.height() >= panel.charts.minimumSizeHint().height())
    panel.redraw()
    qtbot.wait(1)  # let the axes' new widths reach the layout (no timing: just events)
    panel.redraw()


def left_in_panel(plot: MetricPlot, panel: ChartsPanel) -> int:
    """The x of the plot area's left edge, in the panel's pixels."""
    scene_left = plot.vb.sceneBoundingRect().left()
    return plot.mapTo(panel, plot.mapFromScene(QPointF(scene_left, 0))).x()


def column_lefts(panel: ChartsPanel) -> list[int]:
    group = panel.groups["train"]
    return sorted({plot.mapTo(panel, QPoint(0, 0)).x() for plot in group.shown})


# ---------------------------------------------------------------- grid
@pytest.mark.parametrize("width", [700, 1000, 1600])
def test_columns_follow_the_width(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun, width: int
) -> None:
    folder = six_charts(make_run)
    panel.resize(width, 1000)
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    expected = min(columns_for(panel.scroll_area.viewport().width()), 3)  # train has 3 charts
    assert len(column_lefts(panel)) == expected
    assert expected == min(3, max(1, (panel.scroll_area.viewport().width()) // MIN_CHART_WIDTH))
    assert same_width_per_column(panel)


def test_the_key_filter_hides_charts(qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun) -> None:
    folder = six_charts(make_run)
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    qtbot.keyClicks(panel.toolbar.filter, "LOSS")  # typed: substring, any case
    assert {p.key for p in panel.shown_plots} == {"train/loss", "val/loss"}
    assert not panel.plots["train/lr"].isVisible() and panel.plots["val/loss"].isVisible()
    assert "1 of 3 charts" in panel.groups["train"].header.text()
    assert not panel.groups["perf"].isVisible()
    panel.set_key_filter("val/*")  # a glob
    assert panel.toolbar.filter.text() == "val/*"
    assert {p.key for p in panel.shown_plots} == {"val/loss", "val/acc"}
    # The filter stays when other runs are selected.
    other = six_charts(make_run, "other")
    panel.set_runs([(other, "other")])
    settle(qtbot, panel)
    assert panel.key_filter == "val/*" and not panel.plots["train/loss"].isVisible()
    panel.set_key_filter("nothing-like-it")
    assert panel.pages.currentWidget() is panel.message
    assert "No chart matches" in panel.message.text()
    panel.set_key_filter("")
    assert len(panel.shown_plots) == len(KEYS)


# ---------------------------------------------------------------- x axis
def test_x_axes_are_linked_and_plot_areas_line_up(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = six_charts(make_run)
    panel.resize(700, 1400)  # two columns: train/big above train/loss? sorted: big, loss, lr
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    wait_for(qtbot, lambda: len({left_in_panel(p, panel) for p in panel.plots.values()}) <= 2)
    by_column: dict[int, set[int]] = {}
    for plot in panel.plots.values():
        column = plot.mapTo(panel, QPoint(0, 0)).x()
        by_column.setdefault(column, set()).add(left_in_panel(plot, panel))
    assert len(by_column) == 2
    assert all(len(lefts) == 1 for lefts in by_column.values()), by_column
    assert same_width_per_column(panel)  # right edges line up too
    big = panel.plots["train/big"].getPlotItem().getAxis("left")
    assert big.textWidth > 40  # "1e+08"-like labels: the others took its width
    # Ticks with nothing new do not measure the axes again.
    from desktop_app.charts.axes import YAxis

    measured: list[YAxis] = []
    natural = YAxis.natural_width
    monkeypatch.setattr(YAxis, "natural_width", lambda axis: measured.append(axis) or natural(axis))
    for _ in range(3):
        panel.redraw()
    assert not measured
    YAxis.widths_version += 1  # as when a label's width changes
    panel.redraw()
    assert len(measured) == len(panel.plots)
    # One chart zoomed: every chart shows the same x range.
    panel.plots["val/acc"].vb.setXRange(10, 20, padding=0)
    ranges = {tuple(round(v, 6) for v in p.vb.viewRange()[0]) for p in panel.plots.values()}
    assert ranges == {(10.0, 20.0)}


# ---------------------------------------------------------------- crosshair
def test_the_crosshair_shows_every_runs_value_at_the_step_on_every_chart(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun
) -> None:
    steps = np.arange(0, 100, 2, dtype=float)  # logged at even steps only
    a = make_run("a", {"train/loss": steps * 10, "val/acc": steps / 100}, stride=2)
    b = make_run("b", {"train/loss": steps * 20, "val/acc": steps / 200}, stride=2)
    panel.set_smoothing("none")
    panel.set_runs([(a, "a"), (b, "b")])
    wait_for(qtbot, lambda: loaded(panel, 2))
    source = panel.plots["train/loss"]
    source.scene().sigMouseMoved.emit(source.vb.mapViewToScene(QPointF(41.0, 1.0)))
    other = panel.plots["val/acc"]
    wait_for(qtbot, lambda: other.readout.isVisible())
    for plot in (source, other):
        assert plot.crosshair.isVisible() and plot.crosshair.value() == pytest.approx(41.0)
    # Step 41 was not logged: each run's value is that of step 40 (nearest at or before).
    html = other.readout.textItem.toHtml()
    assert "a: 0.4" in html and "b: 0.2" in html and "step 41" in html
    assert "a: 400" in source.readout.textItem.toHtml()
    assert "b: 800" in source.readout.textItem.toHtml()


# ---------------------------------------------------------------- y range
def test_log_y_per_chart_and_for_all(qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun) -> None:
    folder = six_charts(make_run)
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    big, loss = panel.plots["train/big"], panel.plots["train/loss"]
    panel.set_chart_options("train/big", log_y=True)
    wait_for(qtbot, lambda: big.getPlotItem().ctrl.logYCheck.isChecked())
    assert big.vb.viewRange()[1][1] == pytest.approx(8.0, abs=0.2)  # log10(1e8)
    assert not loss.getPlotItem().ctrl.logYCheck.isChecked()
    assert "log y" in big.getPlotItem().titleLabel.text
    assert big.menu_state()["log_y"] and not loss.menu_state()["log_y"]
    loss.options_button.click()  # the corner button opens the chart's menu
    wait_for(qtbot, loss.menu.isVisible)
    next(a for a in loss.menu.actions() if a.text() == "Log y").trigger()
    assert loss.log_y is True
    loss.menu.hide()
    panel.set_chart_options("train/loss", log_y=None)
    panel.set_log_y(True)
    wait_for(qtbot, lambda: loss.getPlotItem().ctrl.logYCheck.isChecked())
    panel.set_chart_options("train/loss", log_y=False)  # this chart stays linear
    wait_for(qtbot, lambda: not loss.getPlotItem().ctrl.logYCheck.isChecked())
    assert panel.plots["val/loss"].getPlotItem().ctrl.logYCheck.isChecked()


def test_ignoring_outliers_leaves_a_spike_out_of_the_y_range(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun
) -> None:
    values = np.linspace(1.0, 2.0, 300)
    values[150] = 1000.0
    folder = make_run("spiky", {"train/loss": values, "val/loss": values})
    panel.set_runs([(folder, "spiky")])
    wait_for(qtbot, lambda: loaded(panel, 2))
    loss, val = panel.plots["train/loss"], panel.plots["val/loss"]
    panel.redraw()
    assert loss.vb.viewRange()[1][1] > 1000
    panel.toolbar.outliers.click()  # the global toggle
    wait_for(qtbot, lambda: loss.vb.viewRange()[1][1] < 3)
    assert loss.vb.viewRange()[1][0] < 1.0
    panel.set_chart_options("val/loss", ignore_outliers=False)  # this chart keeps every value
    wait_for(qtbot, lambda: val.vb.viewRange()[1][1] > 1000)
    assert loss.vb.viewRange()[1][1] < 3


# ---------------------------------------------------------------- smoothing
def test_smoothing_is_off_by_default_for_the_learning_rate(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun
) -> None:
    folder = six_charts(make_run)
    panel.set_smoothing("ema", 0.9)
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    for key, smoothed in [("train/loss", True), ("train/lr", False), ("perf/steps_per_s", False)]:
        assert panel.plots[key].items_of(folder)[1].isVisible() is smoothed, key
    lr = panel.plots["train/lr"]
    assert not lr.menu_state()["smooth"]
    panel.set_chart_options("train/lr", smooth=True)  # the user's choice wins
    wait_for(qtbot, lambda: lr.items_of(folder)[1].isVisible())
    panel.set_chart_options("train/loss", smooth=False)
    wait_for(qtbot, lambda: not panel.plots["train/loss"].items_of(folder)[1].isVisible())


# ---------------------------------------------------------------- grouping
def test_runs_grouped_by_a_config_key_show_mean_and_band(
    qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun, tmp_path: Path
) -> None:
    steps = np.arange(50, dtype=float)
    runs = [
        make_run("a", {"train/loss": steps + 1}, {"optim": {"lr": 0.1}}),
        make_run("b", {"train/loss": steps + 3}, {"optim": {"lr": 0.1}}),
        make_run("c", {"train/loss": steps * 0 + 7}, {"optim": {"lr": 0.01}}),
    ]
    panel.set_smoothing("none")  # the groups of a smoothed chart are of smoothed values
    panel.set_runs([(folder, folder.name) for folder in runs])
    wait_for(qtbot, lambda: loaded(panel, 1) and len(panel.grouping.configs) == 3)
    panel.toolbar.group_by.setCurrentIndex(panel.toolbar.group_by.findData("optim.lr"))
    assert [(s.label, len(s.runs)) for s in panel.group_specs] == [
        ("optim.lr=0.01", 1), ("optim.lr=0.1", 2)
    ]  # fmt: skip
    assert "optim.lr=0.1 (2 runs)" in panel.legend.text()
    loss = panel.plots["train/loss"]
    wait_for(qtbot, lambda: loss.bands.specs == list(panel.group_specs))
    mean, band = loss.bands.items_of("optim.lr=0.1")
    wait_for(qtbot, lambda: mean.yData is not None and len(mean.yData) == 50)
    assert np.allclose(mean.yData, steps + 2)  # the mean of a and b, step by step
    low, high = band.curves
    assert np.allclose(low.yData, steps + 1) and np.allclose(high.yData, steps + 3)
    assert not loss.items_of(runs[0])[0].isVisible()  # the runs' own lines give way
    assert mean.opts["pen"].color().name() == panel.group_specs[1].color
    # A PNG exported while grouped names the groups in their colours, not the runs.
    panel.export_png(tmp_path / "grouped.png", "train/loss")
    entries = [(sample.item.opts["pen"].color().name(), label.text)
               for sample, label in loss.legend.items]  # fmt: skip
    labels = ["optim.lr=0.01 (1 run)", "optim.lr=0.1 (2 runs)"]
    assert entries == [(s.color, text) for s, text in zip(panel.group_specs, labels, strict=True)]
    panel.set_group_by("")
    wait_for(qtbot, lambda: loss.items_of(runs[0])[0].isVisible())
    assert not mean.isVisible() or loss.bands.specs == []


def test_dark_theme_charts(qtbot: QtBot, panel: ChartsPanel, make_run: MakeRun) -> None:
    folder = six_charts(make_run)
    panel.set_runs([(folder, "six")])
    settle(qtbot, panel)
    panel.set_theme(DARK_CHARTS)
    plot = panel.plots["train/loss"]
    assert plot.backgroundBrush().color().lightness() < 60
    assert plot.getPlotItem().getAxis("left").textPen().color().lightness() > 180


def test_x_axes_of_one_range_and_shape_share_one_drawing(qtbot: QtBot) -> None:
    """Charts with one x range and one width draw their x axis once, and the chart that
    plays another's drawing shows the same pixels as its own; another range or another
    width gets its own drawing."""
    from desktop_app.charts.axes import XAxis

    def axis(plot: MetricPlot) -> XAxis:
        found = plot.getPlotItem().getAxis("bottom")
        assert isinstance(found, XAxis)
        return found

    def forget(plot: MetricPlot) -> None:
        axis(plot).picture = None
        axis(plot).update()  # and its cached pixmap

    def drawing(plot: MetricPlot) -> Any:
        forget(plot)
        return axis(plot)._shared_picture()

    plots = []
    for key in ("a", "b", "c"):
        plot = MetricPlot(key)
        qtbot.addWidget(plot)
        plot.resize(420, 220)
        plot.show()
        plot.vb.setXRange(0, 1000, padding=0)
        plots.append(plot)
    qtbot.waitExposed(plots[-1])
    XAxis._layouts.clear()
    forget(plots[1])
    own = plots[1].grab().toImage()
    XAxis._layouts.clear()
    first = drawing(plots[0])
    forget(plots[1])
    shared = plots[1].grab().toImage()
    assert axis(plots[1]).picture is first and len(XAxis._layouts) == 1
    assert shared == own
    plots[2].vb.setXRange(0, 50_000, padding=0)
    assert drawing(plots[2]) is not first
    plots[1].resize(300, 220)
    qtbot.waitUntil(lambda: plots[1].width() == 300)
    assert drawing(plots[1]) is not first
    # The axis's kept bounding rect (its grid spans the view box) followed the resize.
    for plot in plots:
        for item in (axis(plot), plot.getPlotItem().getAxis("left")):
            assert item.boundingRect() == pg.AxisItem.boundingRect(item)


def test_long_runs_label_their_steps_in_k_m_and_b() -> None:
    from desktop_app.charts.axes import format_steps

    assert format_steps([3_180_000, 3_200_000], 20_000) == ["3.18M", "3.20M"]
    assert format_steps([0, 2_500_000, 5_000_000], 2_500_000) == ["0.0M", "2.5M", "5.0M"]
    assert format_steps([10_000, 20_000], 10_000) == ["10k", "20k"]
    assert format_steps([2e9, 4e9], 2e9) == ["2B", "4B"]
    assert format_steps([1_000_001, 1_000_002], 1) == ["1000001", "1000002"]
    assert format_steps([500, 5_000], 500) is None  # pyqtgraph's plain numbers
    assert format_steps([3.2e6, 3.2e6 + 0.5], 0.5) is None


def test_step_labels_of_a_zoomed_long_run_do_not_overlap(qtbot: QtBot) -> None:
    from PySide6.QtGui import QPainter, QPicture

    plot = MetricPlot("loss")
    qtbot.addWidget(plot)
    plot.resize(310, 190)
    plot.show()
    qtbot.waitExposed(plot)
    plot.vb.setXRange(3_170_000, 3_250_000, padding=0)
    picture = QPicture()
    painter = QPainter(picture)
    try:
        specs = plot.axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    texts = sorted(specs[2], key=lambda spec: spec[0].left())
    assert len(texts) >= 2 and all(text.endswith("M") for _rect, _flags, text in texts)
    for (left, _f, _t), (right, _f2, _t2) in itertools.pairwise(texts):
        assert left.right() <= right.left(), [text for _r, _f, text in texts]
