"""Long runs in the charts: the history is read by viewport, off the GUI thread, exactly."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

import desktop_app.charts.feed as feed_module
from desktop_app.background import BackgroundIO
from desktop_app.charts.model import _aligned
from desktop_app.charts.panel import ChartsPanel
from tests import journal_oracle as oracle
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui

LIMIT = 3_000  # points kept in memory per key in these tests
STEPS = 60_000
SPIKE = 12_345  # in the history, far from the newest points
T0 = 1_700_000_000.0


def _new_run(runs_dir: Path, folder: str, *, name: str) -> tuple[Path, JournalWriter]:
    """A new run folder ``folder`` and its journal's writer (the run shown as ``name``)."""
    root = RunPaths(runs_dir / folder).create().root
    writer = JournalWriter.create(
        root / "journal.sqlite", run_id=folder, name=name, entry="t", kind="api", config={},
        created=T0,
    )  # fmt: skip
    return root, writer


@pytest.fixture
def long_run(runs_dir: Path) -> Path:
    folder, writer = _new_run(runs_dir, "long", name="long")
    rng = np.random.default_rng(3)
    values = np.cumsum(rng.normal(0, 0.1, STEPS))
    values[SPIKE] = 1_000.0
    for step, value in enumerate(values.tolist()):
        writer.log_scalars({"loss": value}, step, wall=T0 + step * 0.1)
    writer.set_status("finished")
    writer.close()
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every journal read of the charts, with the thread it ran on."""
    seen: list[tuple[str, str]] = []
    for name in ("tail", "envelope"):
        original = getattr(JournalReader, name)

        def probe(self: JournalReader, *args: object, _o=original, _n=name, **kw: object):  # type: ignore[no-untyped-def]
            seen.append((_n, threading.current_thread().name))
            return _o(self, *args, **kw)

        monkeypatch.setattr(JournalReader, name, probe)
    monkeypatch.setattr(feed_module, "HISTORY_LIMIT", LIMIT)
    return seen


@pytest.fixture
def panel(qtbot: QtBot) -> Iterator[ChartsPanel]:
    io = BackgroundIO()
    widget = ChartsPanel(io)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    io.close()
    widget.shutdown()


def _drawn(panel: ChartsPanel, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    return _drawn_key(panel, folder, "loss")


def test_a_long_run_opens_with_its_newest_points_and_a_history_read_by_viewport(
    qtbot: QtBot, panel: ChartsPanel, long_run: Path, reads: list[tuple[str, str]]
) -> None:
    panel.set_runs([(long_run, "long")])
    qtbot.waitUntil(lambda: "loss" in panel.plots, timeout=15_000)
    qtbot.waitUntil(lambda: _drawn(panel, long_run)[0].size > 0, timeout=15_000)
    curve = panel.model.runs[long_run].curves["loss"]
    assert curve.history is not None
    assert len(curve) <= LIMIT + 64  # in memory: the newest points only
    assert curve.total() == STEPS
    # The full range shows the spike deep in the history: the overview is exact per column.
    qtbot.waitUntil(lambda: 1_000.0 in _drawn(panel, long_run)[1], timeout=15_000)
    xs, _ = _drawn(panel, long_run)
    assert xs.min() == 0 and xs.max() == STEPS - 1
    assert len(xs) < 6 * 2048 + LIMIT  # never the 60,000 points

    # Zoom into the history: a finer read arrives, and matches the raw min/max per column.
    qtbot.waitUntil(lambda: not curve.history.pending, timeout=15_000)  # type: ignore[union-attr]
    panel.set_follow(False)
    plot = panel.plots["loss"]
    x0, x1 = 20_000.0, 24_000.0
    plot.vb.setXRange(x0, x1, padding=0)
    envelope_reads = sum(name == "envelope" for name, _ in reads)
    panel.redraw()  # the frame asks for a finer read, sent once the frame is painted
    assert panel._unsent
    assert sum(name == "envelope" for name, _ in reads) == envelope_reads

    def fine() -> bool:
        (a, b), _ = plot.vb.viewRange()
        per_px = (b - a) / max(int(plot.vb.width()), 50)
        view = curve.history.view.get("step") if curve.history else None
        return (
            view is not None
            and view.x0 <= a
            and view.x1 >= b
            and _aligned(view, a, per_px)
            and not plot.dirty
        )

    qtbot.waitUntil(fine, timeout=15_000)
    (x0, x1), _ = plot.vb.viewRange()
    width = max(int(plot.vb.width()), 50)
    xs, ys = _drawn(panel, long_run)
    points = [(float(s), v) for s, v, _ in oracle.visible(long_run, "loss")]
    want, _ = oracle.envelope(points, x0, x1, width)
    got, _ = oracle.envelope(list(zip(xs.tolist(), ys.tolist(), strict=True)), x0, x1, width)
    assert got == want

    # Every read ran on the I/O worker, none on the GUI thread.
    assert {name for name, _ in reads} == {"tail", "envelope"}
    assert all(thread != threading.main_thread().name for _, thread in reads)


def test_a_resume_that_supersedes_the_history_is_read_again(
    qtbot: QtBot, panel: ChartsPanel, long_run: Path, reads: list[tuple[str, str]]
) -> None:
    panel.set_runs([(long_run, "long")])
    qtbot.waitUntil(lambda: 1_000.0 in _drawn(panel, long_run)[1], timeout=15_000)
    writer = JournalWriter.open_next_attempt(long_run / "journal.sqlite", resume_step=10_000)
    for step in range(10_001, 10_100):
        writer.log_scalars({"loss": -5.0}, step, wall=T0 + 10_000 + step * 0.1)
    writer.close()

    # The spike at step 12,345 is superseded: it leaves the chart, the new points come in,
    # and nothing past the new attempt's last step is drawn.
    def redone() -> bool:
        xs, ys = _drawn(panel, long_run)
        return (
            len(xs) > 0
            and 1_000.0 not in ys
            and -5.0 in ys
            and math.isclose(float(np.nanmax(xs)), 10_099)
        )

    qtbot.waitUntil(redone, timeout=15_000)


def test_a_run_watched_live_holds_a_bounded_number_of_points(
    qtbot: QtBot, panel: ChartsPanel, runs_dir: Path, reads: list[tuple[str, str]]
) -> None:
    """Points logged while the run is shown stay in memory only up to a bound; then the run
    is read afresh and they become history, drawn by viewport, with nothing lost."""
    from desktop_app.charts.feed import live_limit

    folder, writer = _new_run(runs_dir, "live", name="live")
    try:
        for step in range(500):
            writer.log_scalars({"loss": 1.0}, step, wall=T0 + step * 0.1)
        writer.flush()
        panel.set_runs([(folder, "live")])
        qtbot.waitUntil(lambda: _drawn(panel, folder)[0].size == 500, timeout=15_000)
        total = 500 + live_limit() + LIMIT
        for step in range(500, total):
            value = 77.0 if step == 1_234 else 1.0  # a spike logged while watched
            writer.log_scalars({"loss": value}, step, wall=T0 + step * 0.1)
            if step % 1_000 == 0:
                writer.flush()
        writer.flush()

        def held() -> bool:
            curve = panel.model.runs[folder].curves.get("loss")
            xs, ys = _drawn(panel, folder)
            return (
                curve is not None
                and curve.history is not None
                and curve.total() == total
                and len(xs) > 0
                and float(xs.max()) == total - 1
                and 77.0 in ys
            )

        qtbot.waitUntil(held, timeout=30_000)
        curve = panel.model.runs[folder].curves["loss"]
        assert len(curve) <= live_limit()
        assert panel.model.n_points() <= live_limit()
    finally:
        writer.close()


def _model_with_history(folder: Path, smoothing: tuple[str, float], width: int = 400):
    """A ChartsModel fed by a RunFeed as the panel feeds it, with the history's reads done."""
    from desktop_app.charts.feed import RunFeed
    from desktop_app.charts.model import ChartsModel

    model = ChartsModel()
    model.set_runs([(folder, "long")])
    model.set_smoothing(*smoothing)
    feed = RunFeed(folder)
    model.apply(folder, feed.poll())
    curve = model.runs[folder].curves["loss"]
    view = (0.0, float(STEPS - 1))
    for _ in range(3):  # the overview, then the view read aligned with the columns
        request = curve.wants("step", 0.0, view, width)
        if request is None:
            break
        curve.set_envelope(request, feed.envelope("loss", request))
    feed.close()
    return curve, view


def test_the_history_smooths_as_its_points_do(
    long_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMA over the summary buckets: within each bucket's range of the point-wise EMA, and
    equal to it where a bucket's values are equal."""
    from desktop_app.charts.smoothing import ema

    monkeypatch.setattr(feed_module, "HISTORY_LIMIT", LIMIT)
    curve, view = _model_with_history(long_run, ("ema", 0.99))
    assert curve.history is not None and curve.history.view
    xs, ys = curve.points("step", 0.0, view, 400, smoothed=True)
    points = oracle.visible(long_run, "loss")
    steps = np.array([s for s, _, _ in points])
    values = np.array([v for _, v, _ in points])
    exact, _ = ema(values, 0.99)
    at = np.searchsorted(steps, xs)
    error = np.abs(ys - exact[at])
    # Each bucket enters as its points at their mean: off by at most a bucket's range, and
    # the spike's bucket (1,000 among values near 0) is the only large one.
    bucket_range = 64 * 0.1 * 4  # a random walk of 64 steps of sd 0.1, generously
    assert np.sum(error > bucket_range) <= 64
    assert len(xs) < 20_000  # buckets, not the 60,000 points


def _equal_buckets_run(runs_dir: Path, seed: int) -> tuple[Path, np.ndarray]:
    """A finished run of STEPS points whose every level-1 bucket holds one value."""
    folder, writer = _new_run(runs_dir, "flat", name="long")
    values = np.repeat(np.random.default_rng(seed).normal(0, 1, STEPS // 64 + 1), 64)[:STEPS]
    for step, value in enumerate(values.tolist()):
        writer.log_scalars({"loss": value}, step, wall=T0 + step * 0.1)
    writer.close()
    return folder, values


def test_a_history_of_equal_buckets_smooths_exactly(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop_app.charts.smoothing import ema

    folder, values = _equal_buckets_run(runs_dir, seed=1)
    monkeypatch.setattr(feed_module, "HISTORY_LIMIT", LIMIT)
    curve, view = _model_with_history(folder, ("ema", 0.95))
    xs, ys = curve.points("step", 0.0, view, 400, smoothed=True)
    exact, _ = ema(values, 0.95)
    np.testing.assert_allclose(ys, exact[xs.astype(np.int64)], rtol=1e-9, atol=1e-9)


def test_a_zoomed_history_continues_the_overviews_smoothing(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zoomed in, the EMA starts the view read's buckets from the overview's state where the
    view begins (no pass over the whole history per pan), and stays exact."""
    from desktop_app.charts.feed import RunFeed
    from desktop_app.charts.smoothing import ema

    folder, values = _equal_buckets_run(runs_dir, seed=2)
    monkeypatch.setattr(feed_module, "HISTORY_LIMIT", LIMIT)
    curve, _whole = _model_with_history(folder, ("ema", 0.9))
    assert curve.history is not None
    zoom = (STEPS * 0.4, STEPS * 0.6)
    feed = RunFeed(folder)
    feed.poll()
    request = curve.wants("step", 0.0, zoom, 400)
    assert request is not None and not request.overview
    curve.set_envelope(request, feed.envelope("loss", request))
    feed.close()
    view = curve.history.view["step"]
    assert view.x0 > 0 and view.x1 < STEPS - 1  # the overview shows what is around it
    xs, ys = curve.points("step", 0.0, zoom, 400, smoothed=True)
    exact, _ = ema(values, 0.9)
    np.testing.assert_allclose(ys, exact[xs.astype(np.int64)], rtol=1e-9, atol=1e-9)
    # Panning to another read smooths only that read's buckets: the overview's are cached.
    cached = curve.history.overview_ema[("step", ("ema", 0.9))]
    zoom2 = (STEPS * 0.1, STEPS * 0.2)
    feed = RunFeed(folder)
    feed.poll()
    request = curve.wants("step", 0.0, zoom2, 400)
    assert request is not None
    curve.set_envelope(request, feed.envelope("loss", request))
    feed.close()
    xs, ys = curve.points("step", 0.0, zoom2, 400, smoothed=True)
    np.testing.assert_allclose(ys, exact[xs.astype(np.int64)], rtol=1e-9, atol=1e-9)
    assert curve.history.overview_ema[("step", ("ema", 0.9))] is cached


def test_an_old_journal_is_drawn_at_once_and_upgraded_in_the_background(
    qtbot: QtBot, panel: ChartsPanel, runs_dir: Path, reads: list[tuple[str, str]]
) -> None:
    """A schema-v1 run opens from its points, is migrated off the GUI thread, then is read
    again by viewport; no point is lost on the way."""
    import shutil
    import sqlite3

    folder = runs_dir / "old"
    shutil.copytree(Path(__file__).parent.parent / "fixtures" / "journal-v1", folder)
    before = oracle.visible(folder, "train/loss")
    monkey_limit = 1_000  # so that train/loss (4,000 points) is a long key once summarized
    feed_module.HISTORY_LIMIT, old = monkey_limit, feed_module.HISTORY_LIMIT
    try:
        panel.set_runs([(folder, "old")])
        qtbot.waitUntil(lambda: 50.0 in _drawn_key(panel, folder, "train/loss")[1], timeout=15_000)

        def upgraded() -> bool:
            conn = sqlite3.connect(f"file:{folder / 'journal.sqlite'}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'summaries'").fetchone()
            finally:
                conn.close()
            curve = panel.model.runs[folder].curves.get("train/loss")
            return row == ("complete",) and curve is not None and curve.history is not None

        qtbot.waitUntil(upgraded, timeout=30_000)
        qtbot.waitUntil(lambda: 50.0 in _drawn_key(panel, folder, "train/loss")[1], timeout=15_000)
    finally:
        feed_module.HISTORY_LIMIT = old
    assert oracle.visible(folder, "train/loss") == before
    assert oracle.check_summaries(folder) > 0
    assert all(thread != threading.main_thread().name for _, thread in reads)


def _drawn_key(panel: ChartsPanel, folder: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    plot = panel.plots.get(key)
    if plot is None or folder not in plot.runs:
        return np.empty(0), np.empty(0)
    item = plot.items_of(folder)[0]
    if item.yData is None:
        return np.empty(0), np.empty(0)
    return np.asarray(item.xData), np.asarray(item.yData)


def test_a_feed_reads_nothing_while_nothing_is_committed(
    runs_dir: Path, reads: list[tuple[str, str]]
) -> None:
    """The charts' poll of an unchanged journal is one pragma, no tail read; a commit by the
    writer is seen at the next poll."""
    from desktop_app.charts.feed import RunFeed

    folder, writer = _new_run(runs_dir, "quiet", name="quiet")
    try:
        writer.log_scalars({"loss": 1.0}, 0, wall=T0)
        writer.flush()
        feed = RunFeed(folder)
        first = feed.poll_if_changed()
        assert first is not None and first.n_points == 1
        tails = sum(1 for name, _thread in reads if name == "tail")
        for _ in range(5):
            assert feed.poll_if_changed() is None
        assert sum(1 for name, _thread in reads if name == "tail") == tails
        writer.log_scalars({"loss": 2.0}, 1, wall=T0 + 1)
        writer.flush()
        later = feed.poll_if_changed()
        assert later is not None and later.n_points == 1
        feed.close()
    finally:
        writer.close()
