"""The charts' Qt-free models: buffers, smoothing, downsampling, runs. No QApplication here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from desktop_app.charts.downsample import PeakIndex, decimate, m4
from desktop_app.charts.model import (
    ChartsModel,
    Curve,
    check_smoothing,
    follow_range,
    group_of,
    round_up,
)
from desktop_app.charts.series import GrowingArray, SeriesBuffer
from desktop_app.charts.smoothing import (
    EmaSmoother,
    MovingAverageSmoother,
    ema,
    linear_scan,
    make_smoother,
    moving_average,
)
from trainer.journal.reader import EventRow, RunInfo, Series, TailBatch

RNG = np.random.default_rng(7)


def reference_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased EMA, one point at a time (non-finite values pass through)."""
    last, count, out = 0.0, 0, []
    for x in values:
        if not math.isfinite(x):
            out.append(x)
            continue
        last = last * weight + (1 - weight) * x
        count += 1
        out.append(last / (1 - weight**count))
    return np.array(out)


def reference_mean(values: np.ndarray, window: int, centred: bool) -> np.ndarray:
    left = window // 2 if centred else window - 1
    right = window - 1 - left
    out = []
    for i in range(len(values)):
        seg = values[max(0, i - left) : i + right + 1]
        seg = seg[np.isfinite(seg)]
        out.append(seg.mean() if len(seg) else np.nan)
    return np.array(out)


# ---------------------------------------------------------------- buffers
def test_growing_array_doubles_and_keeps_its_items() -> None:
    array = GrowingArray(np.float64, capacity=4)
    array.append(np.arange(3.0))
    assert array.capacity == 4
    array.append(np.arange(3.0, 10.0))
    assert array.capacity == 16
    assert array.view.tolist() == list(np.arange(10.0))
    array.resize(2)
    assert array.view.tolist() == [0.0, 1.0]


def test_series_buffer_grows_by_doubling() -> None:
    buffer = SeriesBuffer(capacity=8)
    for start in range(0, 100, 10):
        steps = np.arange(start, start + 10)
        buffer.append(steps, steps * 0.5, 1000.0 + steps)
    assert len(buffer) == 100
    assert buffer.capacity == 128
    assert buffer.steps.tolist() == list(range(100))
    assert buffer.values[-1] == 49.5
    assert buffer.take_changes() == 0
    assert buffer.take_changes() is None


def test_truncate_drops_the_redone_steps_and_reports_where() -> None:
    buffer = SeriesBuffer()
    steps = np.arange(0, 100)
    buffer.append(steps, steps.astype(float), 1000.0 + steps, np.ones(100, dtype=np.int32))
    buffer.take_changes()
    assert buffer.truncate_from(60)
    assert len(buffer) == 60 and buffer.steps[-1] == 59
    assert not buffer.truncate_from(80)  # nothing there
    # The next attempt continues: steps stay strictly increasing, no zigzag.
    buffer.append(np.arange(60, 70), np.zeros(10), 2000.0 + np.arange(10), np.full(10, 2))
    assert buffer.take_changes() == 60
    assert np.all(np.diff(buffer.steps) > 0)
    assert buffer.attempts[-1] == 2 and buffer.attempts[0] == 1


def test_appending_steps_already_held_replaces_them() -> None:
    buffer = SeriesBuffer()
    buffer.append(np.arange(10), np.zeros(10), np.arange(10.0))
    buffer.append(np.arange(5, 8), np.ones(3), np.arange(20.0, 23.0))
    assert buffer.steps.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert buffer.values[-3:].tolist() == [1.0, 1.0, 1.0]


def test_wall_times_that_go_back_are_noticed() -> None:
    buffer = SeriesBuffer()
    buffer.append(np.arange(3), np.zeros(3), np.array([10.0, 11.0, 12.0]))
    assert buffer.walls_sorted
    buffer.append(np.arange(3, 5), np.zeros(2), np.array([5.0, 6.0]))
    assert not buffer.walls_sorted
    buffer.truncate_from(3)
    assert buffer.walls_sorted


# ---------------------------------------------------------------- smoothing
@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_ema_matches_the_reference_loop(weight: float) -> None:
    values = RNG.normal(size=5000).cumsum()
    values[[3, 100, 4000]] = [np.nan, np.inf, np.nan]
    got, _state = ema(values, weight)
    want = reference_ema(values, weight)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-9, atol=1e-9)
    assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 9, 1000, 2049])
def test_linear_scan_is_the_recurrence_loop(n: int) -> None:
    keep = RNG.random(n) ** RNG.integers(1, 40, n)
    adds = RNG.normal(size=n) * 10.0 ** RNG.integers(-3, 4, n)
    want, acc = [], 0.25
    for k, a in zip(keep.tolist(), adds.tolist(), strict=True):
        acc = k * acc + a
        want.append(acc)
    got = linear_scan(keep, adds, 0.25)
    assert len(got) == n
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_ema_is_debiased() -> None:
    assert ema(np.full(50, 3.0), 0.99)[0] == pytest.approx(np.full(50, 3.0))
    assert ema(np.array([5.0, 1.0]), 0.9)[0][0] == 5.0


def test_ema_in_pieces_equals_ema_at_once() -> None:
    values = RNG.normal(size=3000)
    whole, _ = ema(values, 0.95)
    first, state = ema(values[:1234], 0.95)
    rest, _ = ema(values[1234:], 0.95, state)
    # atol: an EMA that crosses zero has values of 1e-7 and less, whose relative rounding
    # differences (blocks cut in other places) reach 1e-11 while the absolute ones are 1e-17.
    np.testing.assert_allclose(np.concatenate([first, rest]), whole, rtol=1e-12, atol=1e-14)


def test_ema_smoother_never_changes_past_points() -> None:
    smoother = EmaSmoother(0.9)
    values = RNG.normal(size=2000)
    assert smoother.update(values[:1000], 0) == 0
    before = smoother.values.copy()
    assert smoother.update(values, 1000) == 1000
    assert np.array_equal(smoother.values[:1000], before)
    np.testing.assert_allclose(smoother.values, reference_ema(values, 0.9), rtol=1e-9)


def test_ema_smoother_restarts_after_a_truncation() -> None:
    smoother = EmaSmoother(0.8)
    values = RNG.normal(size=500)
    smoother.update(values, 0)
    redone = np.concatenate([values[:300], RNG.normal(size=50)])
    smoother.update(redone, 300)
    np.testing.assert_allclose(smoother.values, reference_ema(redone, 0.8), rtol=1e-9)


@pytest.mark.parametrize("centred", [False, True])
@pytest.mark.parametrize("window", [1, 2, 5, 50])
def test_moving_average_matches_the_reference(window: int, centred: bool) -> None:
    values = RNG.normal(size=400)
    values[[10, 11, 200]] = np.nan
    got = moving_average(values, window, centred=centred)
    np.testing.assert_allclose(got, reference_mean(values, window, centred), rtol=1e-9)


def test_trailing_average_keeps_the_past_and_the_centred_one_only_its_tail() -> None:
    values = RNG.normal(size=1000)
    trailing, centred = MovingAverageSmoother(20), MovingAverageSmoother(21, centred=True)
    for smoother in (trailing, centred):
        smoother.update(values[:600], 0)
    old_trailing, old_centred = trailing.values.copy(), centred.values.copy()
    assert trailing.update(values, 600) == 600
    assert centred.update(values, 600) == 590  # the last 10 saw only half their window
    assert np.array_equal(trailing.values[:600], old_trailing)
    assert np.array_equal(centred.values[:590], old_centred[:590])
    np.testing.assert_allclose(centred.values, reference_mean(values, 21, True), rtol=1e-9)


def test_smoother_choices_are_validated() -> None:
    assert check_smoothing("ema", 0.0) == ("none", 0.0)
    assert check_smoothing("ma", 1) == ("none", 0.0)
    assert check_smoothing("cma", 7) == ("cma", 7.0)
    for bad in (("ema", 1.0), ("ma", 0), ("ma", 2.5), ("gauss", 3)):
        with pytest.raises(ValueError):
            check_smoothing(*bad)
    with pytest.raises(ValueError):
        make_smoother("ema", 1.0)


# ---------------------------------------------------------------- downsampling
def test_a_single_spike_among_ten_million_points_survives() -> None:
    n = 10_000_000
    x = np.arange(n, dtype=np.float64)
    y = np.random.default_rng(1).normal(size=n)
    y[7_654_321] = 60.0
    y[1_234] = -50.0
    index = PeakIndex()
    index.update(y, 0)
    picked = decimate(x, y, (0.0, n - 1.0), 800, index=index)
    assert len(picked) <= 8 * 800 + 2
    assert y[picked].max() == 60.0 and y[picked].min() == -50.0
    assert picked[0] == 0 and picked[-1] == n - 1
    assert np.all(np.diff(picked) > 0)


def test_m4_keeps_first_last_min_max_per_column_on_uneven_x() -> None:
    x = np.sort(RNG.uniform(0, 100, size=20_000)) ** 1.5  # dense left, sparse right
    y = RNG.normal(size=len(x))
    y[12_345] = 9.0
    picked = m4(x, y, float(x[0]), float(x[-1]), 200)
    assert len(picked) <= 4 * 201
    assert y[picked].max() == 9.0
    assert picked[0] == 0 and picked[-1] == len(x) - 1
    cols = np.floor((x - x[0]) * (200 / (x[-1] - x[0]))).clip(max=199)
    for col in np.unique(cols)[::17]:
        members = np.flatnonzero(cols == col)
        kept = np.intersect1d(members, picked)
        assert y[kept].max() == y[members].max() and y[kept].min() == y[members].min()


def test_m4_survives_unsorted_x_and_nan() -> None:
    x = RNG.uniform(0, 10, size=1000)
    y = RNG.normal(size=1000)
    y[::7] = np.nan
    picked = m4(x, y, 0.0, 10.0, 50)
    assert len(picked) and np.all(np.diff(picked) > 0)


def test_the_peak_index_updated_in_pieces_equals_one_built_at_once() -> None:
    y = RNG.normal(size=300_000)
    y[RNG.integers(0, len(y), 300)] = np.nan
    index = PeakIndex()
    index.update(y[:100_000], 0)
    index.refresh(y[:100_000], 4)
    for end in range(120_000, 300_001, 20_000):
        index.update(y[:end], end - 20_000)
        if end % 40_000:
            index.refresh(y[:end], 3)
    index.update(y[:250_001], 250_001 - 1000)  # a truncation, then more points
    index.update(y, 250_001 - 1000)
    fresh = PeakIndex()
    fresh.update(y, 0)
    for level in range(1, fresh.levels + 1):
        lo, hi = 12_345, 287_654
        assert np.array_equal(
            index.candidates(y, lo, hi, level), fresh.candidates(y, lo, hi, level)
        )
    block = fresh.block_size(1)
    blocks = y[: len(y) // block * block].reshape(-1, block)
    want = np.nanargmax(blocks, axis=1) + np.arange(len(blocks)) * block
    got = fresh.candidates(y, 0, len(blocks) * block, 1)
    assert set(want) <= set(got)


def test_decimate_clips_to_the_view_and_keeps_one_point_beyond() -> None:
    x = np.arange(100_000, dtype=np.float64)
    y = np.sin(x / 50)
    index = PeakIndex()
    index.update(y, 0)
    picked = decimate(x, y, (1000.0, 2000.0), 100, index=index)
    assert x[picked[0]] == 999 and x[picked[-1]] == 2001
    small = decimate(x, y, (1000.0, 1100.0), 100, index=index)
    assert len(small) == 103  # few points: all of them


def test_decimate_in_log_x_leaves_out_x_at_or_below_zero() -> None:
    x = np.arange(0, 50_000, dtype=np.float64)
    y = np.ones_like(x)
    picked = decimate(x, y, (0.0, math.log10(49_999)), 300, index=None, log_x=True)
    assert x[picked].min() == 1
    rel = decimate(x, y, (0.0, 2.0), 300, log_x=True, offset=10.0)
    assert x[rel].min() == 11  # relative to 10: only x > 10 has a logarithm


# ---------------------------------------------------------------- runs and curves
def info(created: float = 1000.0) -> RunInfo:
    return RunInfo(
        id="r", name="r", entry="e", kind="api", created=created, config={}, status="running",
        exit_reason=None, pid=None, pid_started=None, host="h", attempt=1, step=0,
        max_steps=None, updated=created, heartbeat_wall=None, heartbeat_step=None,
    )  # fmt: skip


def series(steps: range, attempt: int = 1, wall0: float = 1000.0) -> Series:
    s = np.array(steps, dtype=np.int64)
    return Series(s, s * 0.1, wall0 + s.astype(float), np.full(len(s), attempt, np.int32))


def event(kind: str, step: int | None, attempt: int = 1, wall: float = 1050.0) -> EventRow:
    return EventRow(id=0, wall=wall, attempt=attempt, step=step, kind=kind, message="m", data=None)


def test_groups_by_namespace() -> None:
    keys = ["train/loss", "val/acc", "perf/tps", "system/rss", "eval/x", "loss"]
    assert [group_of(k) for k in keys] == ["train", "val", "perf", "system", "other", "other"]


def test_model_applies_resumes_before_points_and_hides_superseded_events() -> None:
    model = ChartsModel()
    folder = Path("/runs/a")
    model.set_runs([(folder, "a")])
    batch = TailBatch(
        run=info(),
        points={"train/loss": series(range(0, 100))},
        events=[event("checkpoint", 50), event("checkpoint", 80), event("finished", 99)],
    )
    changed, events = model.apply(folder, batch)
    assert changed == {"train/loss"} and events
    run = model.runs[folder]
    assert [e.step for e in run.visible_events()] == [50, 80]  # "finished" is not marked
    resume = TailBatch(
        run=info(),
        points={"train/loss": series(range(51, 70), attempt=2, wall0=2000.0)},
        new_attempts=[(2, 51)],
        events=[event("restarted", 50, attempt=2, wall=2050.0)],
    )
    model.apply(folder, resume)
    curve = run.curves["train/loss"]
    assert curve.buffer.steps.tolist() == list(range(70))
    assert [(e.kind, e.step) for e in run.visible_events()] == [
        ("checkpoint", 50),
        ("restarted", 50),
    ]  # the checkpoint at 80 belonged to the superseded attempt
    marks = run.marks("train/loss", "step", smoothed=False)
    assert [(m.kind, m.x, m.y) for m in marks] == [
        ("checkpoint", 50.0, pytest.approx(5.0)),
        ("restarted", 50.0, pytest.approx(5.0)),
    ]


def test_a_first_read_of_a_resumed_run_learns_the_attempts_from_its_events() -> None:
    model = ChartsModel()
    folder = Path("/runs/b")
    model.set_runs([(folder, "b")])
    batch = TailBatch(
        run=info(),
        points={"train/loss": series(range(0, 40))},
        events=[event("checkpoint", 20), event("error", 30), event("restarted", 20, 2)],
    )
    model.apply(folder, batch)
    assert [e.kind for e in model.runs[folder].visible_events()] == ["checkpoint", "restarted"]


def test_curve_points_follow_x_modes_and_break_between_attempts_in_time() -> None:
    model = ChartsModel()
    folder = Path("/runs/c")
    model.set_runs([(folder, "c")])
    model.apply(folder, TailBatch(run=info(created=900.0), points={"k": series(range(10))}))
    model.apply(
        folder,
        TailBatch(
            run=info(created=900.0),
            points={"k": series(range(10, 20), attempt=2, wall0=5000.0)},
            new_attempts=[(2, 10)],
        ),
    )
    curve = model.runs[folder].curves["k"]
    xs, ys = curve.points("step", 900.0, (0.0, 19.0), 500, smoothed=False)
    assert xs.tolist() == list(range(20))
    xs, ys = curve.points("relative", 900.0, (0.0, 5000.0), 500, smoothed=False)
    assert xs[0] == 100.0 and np.isnan(xs[10]) and np.isnan(ys[10]) and xs[-1] == 4119.0
    xs, _ = curve.points("wall", 900.0, (1000.0, 6000.0), 500, smoothed=False)
    assert xs[0] == 1000.0
    assert model.x_bounds("relative") == (100.0, 4119.0)
    assert model.x_bounds("step", log_x=True) == (0.0, math.log10(19))


def test_smoothing_changes_the_smoothed_copy_not_the_raw_values() -> None:
    model = ChartsModel()
    folder = Path("/runs/d")
    model.set_runs([(folder, "d")])
    model.apply(folder, TailBatch(run=info(), points={"k": series(range(200))}))
    curve = model.runs[folder].curves["k"]
    raw = curve.buffer.values.copy()
    assert model.set_smoothing("cma", 9)
    assert not model.set_smoothing("cma", 9)
    _, smoothed = curve.points("step", 0.0, (0.0, 199.0), 1000, smoothed=True)
    np.testing.assert_allclose(smoothed, reference_mean(raw, 9, True))
    assert np.array_equal(curve.buffer.values, raw)


def test_follow_range_leaves_room_and_holds_still_until_the_data_reaches_its_edge() -> None:
    first = follow_range((0.0, 100.0), None)
    assert first == (0.0, 120.0)  # 5% more, rounded up to a round span
    assert follow_range((0.0, 104.0), first) == first
    assert follow_range((0.0, 120.0), first) == first
    assert follow_range((0.0, 121.0), first) == (0.0, 150.0)
    assert follow_range((0.0, 10.0), first) == (0.0, 12.0)  # far too wide: shrink
    assert follow_range((5.0, 5.0), None) == pytest.approx((4.5, 5.7))
    assert follow_range((1.7e9, 1.7e9 + 3000.0), None) == (1.7e9, 1.7e9 + 4000.0)  # wall time
    # A run logging one step a time moves the axes about every fifth of its age.
    current, moves = None, 0
    for step in range(1, 2001):
        new = follow_range((0.0, float(step)), current)
        moves += new != current
        current = new
    assert moves <= 40
    # Runs that ended do not grow: no room left for them beyond the margin.
    assert follow_range((0.0, 100.0), None, live=False) == (0.0, 105.0)
    assert follow_range((0.0, 104.0), (0.0, 105.0), live=False) == (0.0, 105.0)


def test_round_up() -> None:
    assert [round_up(v) for v in (1.0, 1.01, 1.3, 2.2, 7.0, 9.0, 10.0, 0.034)] == pytest.approx(
        [1.0, 1.2, 1.5, 2.5, 8.0, 10.0, 10.0, 0.04]
    )
    assert round_up(0.0) == 0.0 and round_up(-1.0) == -1.0 and math.isnan(round_up(math.nan))


@pytest.mark.parametrize("seed", range(6))
def test_m4_redone_from_its_last_column_equals_m4_of_everything(seed: int) -> None:
    """A live curve's M4 with a memo redoes only its last pixel column after points are
    appended: the picks must equal a fresh M4 of all points in view, whatever the appended
    batch sizes, spikes, NaN and views (kept for a while, then changed)."""
    from desktop_app.charts.downsample import M4Memo

    rng = np.random.default_rng(seed)
    total = 6000
    xs = np.cumsum(rng.integers(1, 4, size=total)).astype(np.float64)
    ys = np.cumsum(rng.normal(size=total))
    ys[rng.random(total) < 0.01] = np.nan
    ys[rng.random(total) < 0.005] *= 50.0  # spikes
    memo = M4Memo()
    view = (0.0, float(xs[-1]) * 1.1, 300)
    n, reused = 30, 0
    while n < total:
        n = min(total, n + int(rng.integers(1, 60)))
        if rng.random() < 0.05:  # a new view now and then (a pan, a new follow range)
            lo_x = float(rng.uniform(0, xs[n - 1] / 2))
            view = (lo_x, lo_x + float(rng.uniform(10, xs[-1])), int(rng.integers(50, 600)))
        memo.changed(n - 1)  # the newest point arrived (as Curve.sync reports it)
        before = memo.view is not None and memo.resume > 0
        fresh = decimate(xs[:n], ys[:n], view[:2], view[2], x_sorted=True, exact_up_to=10**9)
        picked = decimate(
            xs[:n], ys[:n], view[:2], view[2], x_sorted=True, exact_up_to=10**9, memo=memo
        )
        np.testing.assert_array_equal(picked, fresh)
        reused += before
    assert reused > 20  # the memo was used, not only filled


def test_a_curve_forgets_its_m4_memo_when_a_resume_truncates_it() -> None:
    """Points redone by a resumed attempt change the curve below its last column: what is
    drawn is then a fresh M4, never the old picks."""
    curve = Curve(("ema", 0.6))
    steps = np.arange(4000)
    values = np.sin(steps / 50.0) + np.random.default_rng(3).normal(scale=0.1, size=4000)
    curve.buffer.append(steps[:3000], values[:3000], 1e9 + steps[:3000] * 1.0)
    curve.changed()
    view = ((0.0, 5000.0), 200)
    for smoothed in (False, True):
        curve.points("step", 0.0, *view, smoothed=smoothed)
    curve.buffer.truncate_from(1000)  # a resumed attempt from step 1000, lower values
    curve.changed()
    curve.buffer.append(steps[1000:4000], values[1000:4000] - 5.0, 2e9 + steps[1000:4000])
    curve.changed()
    for smoothed in (False, True):
        xs, ys = curve.points("step", 0.0, *view, smoothed=smoothed)
        fresh = Curve(("ema", 0.6))
        fresh.buffer.append(curve.buffer.steps, curve.buffer.values.copy(), curve.buffer.walls)
        fresh.changed()
        fx, fy = fresh.points("step", 0.0, *view, smoothed=smoothed)
        np.testing.assert_array_equal(xs, fx)
        np.testing.assert_allclose(ys, fy, rtol=1e-6)
