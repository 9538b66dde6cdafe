"""The charts panel over real journals written by the real JournalWriter, offscreen."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

import trainer.journal.writer as writer_module
from desktop_app.background import BackgroundIO
from desktop_app.charts.panel import ChartsPanel
from desktop_app.charts.plot import MetricPlot
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000
T0 = 1_700_000_000.0


class Clock:
    """Stands in for the writer's ``time`` module: wall time moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()


class Runs:
    """Makes run folders with real journals; the writers' wall clock is simulated."""

    def __init__(self, runs_dir: Path, clock: Clock) -> None:
        self.dir = runs_dir
        self.clock = clock
        self.writers: list[JournalWriter] = []

    def create(self, name: str) -> tuple[Path, JournalWriter]:
        paths = RunPaths(self.dir / name).create()
        writer = JournalWriter.create(
            paths.journal, run_id=name, name=name, entry="t", kind="api", config={}
        )
        self.writers.append(writer)
        writer.set_status("running")
        return paths.root, writer

    def resume(self, folder: Path, resume_step: int) -> JournalWriter:
        writer = JournalWriter.open_next_attempt(folder / "journal.sqlite", resume_step=resume_step)
        self.writers.append(writer)
        writer.event("restarted", f"from step {resume_step}", step=resume_step)
        return writer

    def log(
        self, writer: JournalWriter, key: str, start: int, values: Any, dt: float = 1.0
    ) -> None:
        """Log ``values`` at steps ``start, start + 1, ...``, ``dt`` seconds apart; commit."""
        for offset, value in enumerate(values):
            self.clock.now += dt
            writer.log_scalars({key: float(value)}, start + offset)
        writer.flush()


@pytest.fixture
def runs(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runs]:
    clock = Clock()
    monkeypatch.setattr(writer_module, "time", clock)
    made = Runs(runs_dir, clock)
    yield made
    for writer in made.writers:
        writer.close()


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[ChartsPanel]:
    io = BackgroundIO()
    widget = ChartsPanel(io)
    qtbot.addWidget(widget)
    widget.resize(1000, 900)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    io.close()
    widget.shutdown()


def wait_for(qtbot: QtBot, condition: Callable[[], object]) -> None:
    qtbot.waitUntil(lambda: bool(condition()), timeout=TIMEOUT_MS)


def plot_of(panel: ChartsPanel, key: str) -> MetricPlot | None:
    return panel.plots.get(key)


def drawn(panel: ChartsPanel, key: str, folder: Path, which: int = 0) -> np.ndarray:
    """x of what the chart of ``key`` draws for ``folder`` (which: 0 raw, 1 smoothed)."""
    plot = panel.plots.get(key)
    if plot is None or folder not in plot.runs:
        return np.empty(0)
    item = plot.items_of(folder)[which]
    return np.empty(0) if item.xData is None else np.asarray(item.xData)


def drawn_y(panel: ChartsPanel, key: str, folder: Path, which: int = 0) -> np.ndarray:
    item = panel.plots[key].items_of(folder)[which]
    return np.asarray(item.yData)


def count_set_data(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record every ``setData`` on a curve, PlotDataItem or ScatterPlotItem from now on."""
    calls: list[object] = []
    for cls in (pg.PlotCurveItem, pg.PlotDataItem, pg.ScatterPlotItem):
        original = cls.setData

        def counting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(self)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "setData", counting)
    return calls


def count_ticks(panel: ChartsPanel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the display timer's redraws (each returns the setData calls it made)."""
    ticks: list[int] = []
    original = panel.redraw

    def counting(*args: Any) -> int:
        ticks.append(original(*args))
        return ticks[-1]

    monkeypatch.setattr(panel, "redraw", counting)
    return ticks


# ---------------------------------------------------------------- tests
def test_curves_grow_as_points_are_logged(qtbot: QtBot, panel: ChartsPanel, runs: Runs) -> None:
    folder, writer = runs.create("live")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 10))
    panel.set_runs([(folder, "live")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 10)
    runs.log(writer, "train/loss", 10, np.linspace(1, 0.5, 20))
    runs.log(writer, "val/loss", 29, [0.7])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 30)
    assert drawn(panel, "train/loss", folder).tolist() == list(range(30))
    assert drawn_y(panel, "train/loss", folder)[-1] == 0.5
    wait_for(qtbot, lambda: len(drawn(panel, "val/loss", folder)) == 1)
    assert panel.groups["val"].isVisible() and not panel.groups["perf"].isVisible()
    assert panel.pages.currentWidget() is panel.scroll_area


def test_new_points_are_drawn_when_they_arrive_not_a_tick_later(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    """A batch read is drawn at once: with the display timer stopped, it still reaches the
    curve (before, it waited for the next tick, up to DISPLAY_INTERVAL_MS on every point)."""
    folder, writer = runs.create("prompt")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 10))
    panel.set_runs([(folder, "prompt")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 10)
    panel._timer.stop()  # the panel reads its own tail here: read it by hand, as a hub would
    runs.log(writer, "train/loss", 10, [0.5])

    def read_and_drawn() -> bool:
        panel._feeds.poll()  # submits the read once it is due; the redraw is not asked for
        return len(drawn(panel, "train/loss", folder)) == 11

    wait_for(qtbot, read_and_drawn)
    assert drawn_y(panel, "train/loss", folder)[-1] == 0.5


def test_a_run_line_keeps_pyqtgraphs_bounding_rect(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    """The run line's cheap bounds (cached per setData, padding from the view box) are the
    ones pyqtgraph's own PlotCurveItem computes through the device transform."""
    folder, writer = runs.create("bounds")
    runs.log(writer, "train/loss", 0, [3.0, -1.0, 5.0, 2.0])
    panel.set_runs([(folder, "bounds")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 4)
    plot = panel.plots["train/loss"]
    plot.vb.updateMatrix()  # a new range reaches the items' transform at the next paint
    item = plot.items_of(folder)[0]
    item.invalidateBounds()
    ours = item.boundingRect()
    item.invalidateBounds()
    theirs = pg.PlotCurveItem.boundingRect(item)
    # The data spans x 0..3, y -1..5; each side is padded by about 0.7 pixel, which the
    # two compute from the same view in different ways: equal to a few % of that padding.
    pad_x, pad_y = 0.0 - theirs.left(), -1.0 - theirs.top()
    assert pad_x > 0 and pad_y > 0
    sides = [
        (ours.left(), theirs.left(), pad_x),
        (ours.right(), theirs.right(), pad_x),
        (ours.top(), theirs.top(), pad_y),
        (ours.bottom(), theirs.bottom(), pad_y),
    ]
    for a, b, pad in sides:
        assert abs(a - b) <= 0.05 * pad


def test_two_runs_overlay_in_two_colours_with_a_legend(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    a, writer_a = runs.create("run-a")
    b, writer_b = runs.create("run-b")
    runs.log(writer_a, "train/loss", 0, np.linspace(2, 1, 50))
    runs.log(writer_b, "train/loss", 0, np.linspace(3, 2, 40))
    panel.set_runs([(a, "run-a"), (b, "run-b")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", b)) == 40)
    assert len(drawn(panel, "train/loss", a)) == 50
    colors = panel.colors
    assert len(set(colors.values())) == 2
    plot = panel.plots["train/loss"]
    assert plot.runs == [a, b]
    for folder in (a, b):
        raw, smooth, _marks = plot.items_of(folder)
        assert raw.opts["pen"].color().rgb() == smooth.opts["pen"].color().rgb()
        assert smooth.opts["pen"].color().name() == colors[folder]
        assert smooth.opts["pen"].width() <= 1
    plot.set_legend_visible(True)  # the plot's own legend is for exports
    assert [label.text for _sample, label in plot.legend.items] == ["run-a", "run-b"]
    plot.set_legend_visible(False)
    # The panel's legend: names that never break inside (a non-breaking hyphen).
    assert "run\u2011a" in panel.legend.text() and "run\u2011b" in panel.legend.text()
    assert colors[a] in panel.legend.text() and colors[b] in panel.legend.text()
    # Dropping a run drops its curves; the other keeps its colour.
    panel.set_runs([(b, "run-b")])
    wait_for(qtbot, lambda: plot.runs == [b])
    assert panel.colors == {b: colors[b]}


def test_a_resumed_attempt_truncates_the_curve(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    folder, first = runs.create("resumed")
    runs.log(first, "train/loss", 0, np.full(100, 1.0))
    first.event("checkpoint", "ckpt-50", step=50)
    first.close()
    panel.set_runs([(folder, "resumed")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 100)

    second = runs.resume(folder, resume_step=50)
    runs.log(second, "train/loss", 51, np.full(29, 2.0))
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 80)
    for which in (0, 1):
        x = drawn(panel, "train/loss", folder, which)
        assert np.all(np.diff(x) > 0), "the curve zigzags back"
        assert x[-1] == 79
    y = drawn_y(panel, "train/loss", folder)
    assert np.all(y[:51] == 1.0) and np.all(y[51:] == 2.0)


def test_smoothing_changes_the_drawn_curve_but_not_the_raw_one(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    folder, writer = runs.create("noisy")
    values = np.random.default_rng(3).normal(1.0, 0.3, 300)
    runs.log(writer, "train/loss", 0, values)
    panel.set_runs([(folder, "noisy")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 300)
    raw, smooth, _marks = panel.plots["train/loss"].items_of(folder)
    assert smooth.isVisible()  # EMA 0.6 by default
    assert panel.toolbar.smoothing.currentData() == "ema"
    first_smooth = np.asarray(smooth.yData).copy()
    assert not np.allclose(first_smooth, values)

    panel.set_smoothing("ma", 10)
    wait_for(qtbot, lambda: not np.allclose(np.asarray(smooth.yData), first_smooth))
    want = [values[max(0, i - 9) : i + 1].mean() for i in range(300)]
    np.testing.assert_allclose(np.asarray(smooth.yData), want, rtol=1e-9)
    assert np.array_equal(np.asarray(raw.yData), values)
    assert raw.opts["pen"].color().alpha() < 255  # faint behind the smoothed curve
    assert panel.toolbar.smoothing.currentData() == "ma"

    panel.set_smoothing("none")
    wait_for(qtbot, lambda: not smooth.isVisible())
    assert raw.opts["pen"].color().alpha() == 255
    assert np.array_equal(np.asarray(raw.yData), values)
    with pytest.raises(ValueError):
        panel.set_smoothing("ema", 1.5)


def test_log_y(qtbot: QtBot, panel: ChartsPanel, runs: Runs) -> None:
    folder, writer = runs.create("decay")
    runs.log(writer, "train/loss", 0, 10.0 ** -np.linspace(0, 3, 100))
    panel.set_runs([(folder, "decay")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 100)
    plot = panel.plots["train/loss"]
    panel.set_log_y(True)
    wait_for(qtbot, lambda: plot.getAxis("left").logMode)
    raw = plot.items_of(folder)[0]
    # The curve is drawn in decades (log10 of each value), as the log axis reads it.
    wait_for(qtbot, lambda: np.allclose(raw.yData, -np.linspace(0, 3, 100)))
    wait_for(qtbot, lambda: plot.vb.viewRange()[1][0] < -2.9)
    low, high = plot.vb.viewRange()[1]
    assert -3.5 < low < -2.9 and 0.0 < high < 0.5  # in decades: the view is log10(y)
    assert panel.toolbar.log_y.isChecked()
    panel.set_log_y(False)
    wait_for(qtbot, lambda: plot.vb.viewRange()[1][1] > 0.9)


def test_x_modes_relative_and_wall(qtbot: QtBot, panel: ChartsPanel, runs: Runs) -> None:
    folder, writer = runs.create("timed")
    runs.log(writer, "train/loss", 0, np.linspace(1, 0, 20), dt=30.0)
    panel.set_runs([(folder, "timed")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 20)
    plot = panel.plots["train/loss"]

    panel.set_x_mode("relative")
    wait_for(qtbot, lambda: drawn(panel, "train/loss", folder)[0] == 30.0)
    assert drawn(panel, "train/loss", folder)[-1] == pytest.approx(600.0)
    assert plot.axis.mode == "relative"
    assert plot.axis.tickStrings([90.0, 3600.0 + 120], 1.0, 60.0) == ["1m30s", "1h2m"]
    low, high = plot.vb.viewRange()[0]
    assert low == pytest.approx(30.0) and 600 < high < 660

    panel.set_x_mode("wall")
    wait_for(qtbot, lambda: drawn(panel, "train/loss", folder)[0] == T0 + 30.0)
    assert plot.axis.mode == "wall"
    assert not panel.toolbar.log_x.isEnabled()

    panel.set_x_mode("step")
    wait_for(qtbot, lambda: drawn(panel, "train/loss", folder)[-1] == 19)
    with pytest.raises(ValueError):
        panel.set_x_mode("epoch")


def test_a_spike_survives_downsampling(qtbot: QtBot, panel: ChartsPanel, runs: Runs) -> None:
    n = 200_000
    values = np.random.default_rng(5).normal(1.0, 0.1, n)
    values[123_457] = 50.0
    folder, writer = runs.create("long")
    runs.log(writer, "train/loss", 0, values, dt=0.001)
    panel.set_runs([(folder, "long")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) > 0)
    # The newest points come first; the rest (the history) follows from the summaries.
    wait_for(qtbot, lambda: 50.0 in drawn_y(panel, "train/loss", folder))
    x = drawn(panel, "train/loss", folder)
    y = drawn_y(panel, "train/loss", folder)
    width = panel.plots["train/loss"].vb.width()
    assert len(x) < 12 * width < n  # downsampled to the pixels
    assert y.max() == 50.0 and x[np.argmax(y)] == 123_457
    assert x[0] == 0 and x[-1] == n - 1
    assert np.all(np.diff(x) > 0)


def test_a_checkpoint_is_marked_with_a_tooltip(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    folder, writer = runs.create("ckpt")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 100))
    writer.event("checkpoint", "ckpt-000000060.pt", step=60)
    writer.flush()
    panel.set_runs([(folder, "ckpt")])
    marks = None

    def marked() -> bool:
        nonlocal marks
        plot = panel.plots.get("train/loss")
        marks = plot.items_of(folder)[2] if plot and folder in plot.runs else None
        return marks is not None and len(marks.data) == 1

    wait_for(qtbot, marked)
    assert marks is not None
    spot = marks.points()[0]
    assert spot.pos().x() == 60.0
    assert spot.pos().y() == pytest.approx(np.asarray(drawn_y(panel, "train/loss", folder, 1))[60])
    assert "checkpoint at step 60" in spot.data() and "ckpt-000000060.pt" in spot.data()
    assert marks.isVisible()


def test_frequent_checkpoints_leave_only_the_newest_marked(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    folder, writer = runs.create("often")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 500))
    for step in range(5, 500, 5):  # 99 checkpoints
        writer.event("checkpoint", f"ckpt-{step:09d}.pt", step=step)
    writer.event("error", "boom", step=250)
    writer.flush()
    panel.set_runs([(folder, "often")])

    def marked() -> list[float] | None:
        plot = panel.plots.get("train/loss")
        marks = plot.items_of(folder)[2] if plot and folder in plot.runs else None
        return sorted(p.pos().x() for p in marks.points()) if marks is not None else None

    wait_for(qtbot, lambda: marked() == [250.0, 495.0])


def test_nothing_is_redrawn_when_nothing_changed(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, writer = runs.create("quiet")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 100))
    runs.log(writer, "val/loss", 99, [1.5])
    panel.set_runs([(folder, "quiet")])
    wait_for(qtbot, lambda: len(drawn(panel, "val/loss", folder)) == 1)
    ticks = count_ticks(panel, monkeypatch)
    wait_for(qtbot, lambda: len(ticks) >= 2)  # settle: the last drawing may still be due
    calls = count_set_data(monkeypatch)
    before = len(ticks)
    wait_for(qtbot, lambda: len(ticks) >= before + 12)  # ~0.7 s: the journal was read again
    assert calls == []

    runs.log(writer, "train/loss", 100, [0.9])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 101)
    redrawn = {id(item) for item in calls}
    val = panel.plots["val/loss"].items_of(folder)
    assert not redrawn & {id(item) for item in val}, "an unchanged chart was redrawn"


def test_a_tick_out_of_time_leaves_the_other_charts_to_the_next(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    """The display timer's redraw stops when its time is up; the charts left dirty go first
    on the next tick, so every chart is drawn within as many ticks as there are charts."""
    folder, writer = runs.create("wide")
    for key in ("train/a", "train/b", "train/c", "train/d"):
        runs.log(writer, key, 0, np.linspace(2, 1, 50))
    panel.set_runs([(folder, "wide")])
    wait_for(qtbot, lambda: all(len(drawn(panel, k, folder)) == 50 for k in ("train/a", "train/d")))
    shown = [p for p in panel.plots.values() if panel._is_shown(p)]
    assert len(shown) >= 2
    panel.set_smoothing("ema", 0.3)  # every chart to draw again
    order = []
    for _ in range(len(shown)):
        before = {p.key for p in shown if p.dirty}
        panel.redraw(0.0)  # no time at all: one chart a tick
        after = {p.key for p in shown if p.dirty}
        assert len(before - after) == 1
        order.extend(before - after)
    assert sorted(order) == sorted(p.key for p in shown)  # each once, none starved


def test_hidden_charts_and_a_minimised_window_are_not_redrawn(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, writer = runs.create("busy")
    runs.log(writer, "train/loss", 0, [1.0, 0.9])
    runs.log(writer, "val/loss", 0, [1.0, 0.9])
    panel.set_runs([(folder, "busy")])
    wait_for(qtbot, lambda: len(drawn(panel, "val/loss", folder)) == 2)
    panel.groups["val"].set_expanded(False)
    runs.log(writer, "val/loss", 2, [0.8])
    runs.log(writer, "train/loss", 2, [0.8])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 3)
    ticks = count_ticks(panel, monkeypatch)
    wait_for(qtbot, lambda: len(ticks) >= 5)
    assert len(drawn(panel, "val/loss", folder)) == 2  # collapsed: not redrawn
    panel.groups["val"].set_expanded(True)
    wait_for(qtbot, lambda: len(drawn(panel, "val/loss", folder)) == 3)

    panel.window().showMinimized()
    wait_for(qtbot, lambda: panel.window().isMinimized())
    runs.log(writer, "train/loss", 3, [0.7])
    count = len(ticks)
    wait_for(qtbot, lambda: len(ticks) >= count + 10)
    assert len(drawn(panel, "train/loss", folder)) == 3
    assert sum(ticks[count:]) == 0
    panel.window().showNormal()
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 4)


def test_zooming_stops_following_and_set_follow_resumes_it(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    folder, writer = runs.create("zoom")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 1000))
    runs.log(writer, "train/acc", 0, np.linspace(0, 1, 1000))
    panel.set_runs([(folder, "zoom")])
    # Charts are made a few per tick: both there, and drawn
    wait_for(qtbot, lambda: all(len(drawn(panel, k, folder)) for k in ("train/acc", "train/loss")))
    loss, acc = panel.plots["train/loss"], panel.plots["train/acc"]
    assert panel.follow

    # What a wheel or a drag does: change the range, then say it was the user.
    loss.vb.setXRange(100, 200, padding=0)
    loss.vb.sigRangeChangedManually.emit([True, True])
    assert not panel.follow and not panel.toolbar.follow.isChecked()
    assert acc.vb.viewRange()[0] == pytest.approx([100, 200])  # x axes are linked
    wait_for(qtbot, lambda: drawn(panel, "train/acc", folder).max() <= 201)
    assert drawn(panel, "train/acc", folder).min() >= 99  # only the view is drawn

    runs.log(writer, "train/loss", 1000, [0.5] * 100)
    wait_for(qtbot, lambda: panel.model.runs[folder].curves["train/loss"].buffer.steps[-1] == 1099)
    assert loss.vb.viewRange()[0] == pytest.approx([100, 200])  # the view stays put

    panel.set_follow(True)
    wait_for(qtbot, lambda: loss.vb.viewRange()[0][1] >= 1099)
    assert loss.vb.viewRange()[0][0] == pytest.approx(0)
    assert panel.toolbar.follow.isChecked()


def test_the_crosshair_lists_every_run(qtbot: QtBot, panel: ChartsPanel, runs: Runs) -> None:
    a, writer_a = runs.create("alpha")
    b, writer_b = runs.create("beta")
    runs.log(writer_a, "train/loss", 0, np.full(100, 0.25))
    runs.log(writer_b, "train/loss", 0, np.full(100, 0.75))
    panel.set_runs([(a, "alpha"), (b, "beta")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", b)) == 100)
    plot = panel.plots["train/loss"]
    scene_pos = plot.vb.mapViewToScene(QPointF(40.0, 0.5))
    plot.scene().sigMouseMoved.emit(scene_pos)
    wait_for(qtbot, lambda: plot.readout.isVisible())
    html = plot.readout.textItem.toHtml()
    assert "alpha" in html and "beta" in html and "0.25" in html and "0.75" in html
    assert "step 40" in html
    assert plot.crosshair.isVisible() and plot.crosshair.value() == pytest.approx(40.0)
    plot.scene().sigMouseMoved.emit(QPointF(-10.0, -10.0))  # off the plot area
    wait_for(qtbot, lambda: not plot.crosshair.isVisible())


def test_export_png(qtbot: QtBot, panel: ChartsPanel, runs: Runs, tmp_path: Path) -> None:
    folder, writer = runs.create("export")
    runs.log(writer, "train/loss", 0, np.linspace(2, 1, 100))
    runs.log(writer, "val/loss", 0, np.linspace(2, 1, 100))
    panel.set_runs([(folder, "export")])
    wait_for(qtbot, lambda: len(drawn(panel, "val/loss", folder)) == 100)
    one = panel.export_png(tmp_path / "loss.png", "train/loss")
    whole = panel.export_png(tmp_path / "all.png")
    for path in (one, whole):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not QImage(str(path)).isNull()
    assert QImage(str(whole)).height() > QImage(str(one)).height()
    assert not panel.plots["train/loss"].legend.isVisible()  # shown for the export only
    with pytest.raises(KeyError):
        panel.export_png(tmp_path / "x.png", "no/such")


def test_an_unreadable_journal_shows_the_reason(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs, runs_dir: Path
) -> None:
    garbage = runs_dir / "garbage"
    garbage.mkdir()
    (garbage / "journal.sqlite").write_bytes(bytes(range(256)) * 64)
    panel.set_runs([(garbage, "garbage")])
    wait_for(qtbot, lambda: "Cannot read" in panel.message.text())
    assert panel.pages.currentWidget() is panel.message
    assert "garbage" in panel.message.text() and "journal.sqlite" in panel.message.text()
    assert panel.plots == {}

    folder, writer = runs.create("fine")
    runs.log(writer, "train/loss", 0, [1.0, 0.5])
    panel.set_runs([(garbage, "garbage"), (folder, "fine")])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 2)
    wait_for(qtbot, lambda: panel.banner.isVisible())
    assert "garbage" in panel.banner.text()
    assert panel.pages.currentWidget() is panel.scroll_area


def test_no_runs_selected(qtbot: QtBot, panel: ChartsPanel) -> None:
    assert "Select" in panel.message.text()
    assert panel.pages.currentWidget() is panel.message
    panel.shutdown()
    panel.shutdown()  # idempotent


def test_a_journal_that_becomes_readable_is_read_from_the_start(
    qtbot: QtBot,
    panel: ChartsPanel,
    runs: Runs,
    runs_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("desktop_app.charts.reading.RETRY_S", 0.2)
    folder = runs_dir / "late"
    folder.mkdir()
    panel.set_runs([(folder, "late")])
    wait_for(qtbot, lambda: "Cannot read" in panel.message.text())  # no journal yet
    folder.rmdir()  # the trainer creates the run folder itself
    created, writer = runs.create("late")
    assert created == folder
    runs.log(writer, "train/loss", 0, [3.0, 2.0, 1.0])
    wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 3)
    assert not panel.banner.isVisible()
    assert panel.model.runs[folder].error is None


@pytest.mark.parametrize(
    "ys",
    [
        [3.0, -1.0, 5.0],
        [3.0, float("nan"), -1.0, 5.0],
        [float("inf"), 2.0, -float("inf"), 1.0],
        [float("nan"), float("nan")],
        [],
    ],
)
def test_run_curve_data_bounds_are_pyqtgraphs(qtbot: QtBot, ys: list[float]) -> None:
    from desktop_app.charts.curve_item import RunCurve

    xs = np.arange(len(ys), dtype=np.float64)
    ours, theirs = RunCurve(pen=pg.mkPen("r", width=1)), pg.PlotCurveItem(pen=pg.mkPen("r"))
    for item in (ours, theirs):
        item.setData(xs, np.asarray(ys, dtype=np.float64))
    assert ours.dataBounds(0) == theirs.dataBounds(0)
    expected = theirs.dataBounds(1)
    if expected[0] is not None and math.isnan(expected[0]):
        expected = (None, None)  # all NaN: pyqtgraph gives NaN bounds, an empty rect here
    assert ours.dataBounds(1) == expected
    ours.setData(xs[:1], np.asarray([7.0])[: min(1, len(ys))] if ys else np.empty(0))
    assert ours.dataBounds(1) == ((7.0, 7.0) if ys else (None, None))  # forgotten on setData


@pytest.mark.parametrize("alpha", [255, 60])
@pytest.mark.parametrize("gaps", [False, True])
def test_run_curve_paints_as_pyqtgraph_does(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, alpha: int, gaps: bool
) -> None:
    from desktop_app.charts.curve_item import RunCurve

    plot = MetricPlot("loss")
    qtbot.addWidget(plot)
    plot.resize(400, 200)
    plot.show()
    qtbot.waitExposed(plot)
    rng = np.random.default_rng(alpha)
    ys = np.cumsum(rng.normal(size=2000))
    if gaps:
        ys[rng.random(2000) < 0.01] = np.nan  # a curve in pieces, as between attempts
    curve = RunCurve(pen=pg.mkPen(QColor(31, 119, 180, alpha), width=1))
    plot.vb.addItem(curve)
    curve.setData(np.arange(2000.0), ys)
    plot.vb.setRange(xRange=(0, 2000), yRange=(np.nanmin(ys), np.nanmax(ys)), padding=0)
    ours = plot.grab().toImage()
    monkeypatch.setattr(RunCurve, "paint", pg.PlotCurveItem.paint)
    curve.update()
    theirs = plot.grab().toImage()
    assert ours == theirs
    monkeypatch.undo()
    curve.setPen(None)  # no pen: nothing drawn, as pyqtgraph draws nothing
    empty = plot.grab().toImage()
    assert empty != ours


def test_run_curve_set_data_matches_pyqtgraphs(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RunCurve's own updateData for ``setData(x, y)`` leaves what pyqtgraph's does: the
    same data, bounds and pixels, through a change of length and a NaN gap."""
    from desktop_app.charts.curve_item import RunCurve

    def shown(lean: bool) -> tuple[QImage, tuple[Any, ...]]:
        if not lean:
            monkeypatch.setattr(
                RunCurve,
                "updateData",
                lambda self, *a, **k: (
                    setattr(self, "_data_bounds", [None, None]),
                    pg.PlotCurveItem.updateData(self, *a, **k),
                ),
            )
        plot = MetricPlot("loss")
        qtbot.addWidget(plot)
        plot.resize(400, 200)
        plot.show()
        qtbot.waitExposed(plot)
        curve = RunCurve(pen=pg.mkPen(QColor(31, 119, 180), width=1))
        plot.vb.addItem(curve)
        curve.setData(np.arange(50.0), np.sin(np.arange(50.0)))
        plot.vb.setRange(xRange=(0, 120), yRange=(-2, 2), padding=0)
        plot.grab()  # painted once with the first data, then changed
        ys = np.cos(np.arange(100.0))
        ys[40:45] = np.nan
        curve.setData(np.arange(100.0), ys)
        image = plot.grab().toImage()
        state = (curve.dataBounds(0), curve.dataBounds(1), curve.boundingRect(), curve.path)
        monkeypatch.undo()
        assert np.array_equal(curve.xData, np.arange(100.0))
        assert np.array_equal(curve.yData, ys, equal_nan=True)
        return image, state

    ours, our_state = shown(lean=True)
    theirs, their_state = shown(lean=False)
    assert our_state == their_state
    assert ours == theirs


def test_with_a_hub_the_display_timer_sleeps_while_nothing_changes(
    qtbot: QtBot, panel: ChartsPanel, runs: Runs
) -> None:
    """An app that only watches a slow run does not wake 16 times a second: the display timer
    stops after a few idle ticks and starts again when a chart needs drawing."""
    from desktop_app.follow.hub import FollowHub

    io = BackgroundIO()
    hub = FollowHub(io, interval_ms=50)
    try:
        panel.use_hub(hub)
        folder, writer = runs.create("slow")
        runs.log(writer, "train/loss", 0, np.linspace(2, 1, 20))
        panel.set_runs([(folder, "slow")])
        wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 20)
        wait_for(qtbot, lambda: not panel._timer.isActive())

        runs.log(writer, "train/loss", 20, [0.5])  # a new point: drawn, the timer awake
        wait_for(qtbot, lambda: len(drawn(panel, "train/loss", folder)) == 21)
        wait_for(qtbot, lambda: not panel._timer.isActive())

        plot = panel.plots["train/loss"]
        plot.dirty = True  # as a resize, a scroll or a finished view read makes it
        assert panel._timer.isActive()
        wait_for(qtbot, lambda: not plot.dirty)  # drawn by the timer, which sleeps again
        wait_for(qtbot, lambda: not panel._timer.isActive())
    finally:
        io.close()
        hub.shutdown()
