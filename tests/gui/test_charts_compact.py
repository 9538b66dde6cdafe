"""Compact chart storage: Steps, search/interp, SeriesBuffer, PeakIndex, exact smoothed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from desktop_app.charts.downsample import PeakIndex, decimate
from desktop_app.charts.model import EXACT_SPAN, Curve
from desktop_app.charts.series import GrowingArray, SeriesBuffer, Steps, interp, search
from desktop_app.charts.smoothing import CHECKPOINT, EmaSmoother, ema, make_smoother

RNG = np.random.default_rng(11)


def probes(x: np.ndarray) -> list[float]:
    lo, hi = (float(x.min()), float(x.max())) if len(x) else (0.0, 1.0)
    values = (
        list(RNG.uniform(lo - 5, hi + 5, 40))
        + [float(v) for v in x[:5]]
        + [float(v) for v in x[-5:]]
    )
    values += [v + d for v in values[:10] for d in (-0.5, 0.5, -1e-9, 1e-9)]
    return [*values, math.inf, -math.inf, math.nan, 1e300, -1e300, 2.0**40]


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_search_matches_searchsorted(dtype: type) -> None:
    x = np.sort(RNG.integers(-1000, 1000, 500)).astype(dtype)
    for side in ("left", "right"):
        for v in probes(x):
            want = int(np.searchsorted(x.astype(np.float64), np.float64(v), side=side))  # type: ignore[call-overload]
            got = search(x, v, side)
            if dtype == np.float32 and math.isfinite(v):
                # the value is rounded to float32 first
                with np.errstate(over="ignore"):  # 1e300 rounds to inf in float32, as meant
                    want = int(np.searchsorted(x, np.float32(v), side=side))  # type: ignore[call-overload]
            assert got == want, (dtype, side, v)


@pytest.mark.parametrize(
    "first,stride,n", [(0, 1, 1), (5, 1, 100), (-7, 3, 50), (10, 500, 300), (0, 1, 0)]
)
def test_regular_steps_behave_like_their_array(first: int, stride: int, n: int) -> None:
    steps = Steps()
    whole = first + stride * np.arange(n, dtype=np.int64)
    for chunk in np.array_split(whole, 7):
        steps.append(chunk)
    assert steps.regular and steps.nbytes == 0 and len(steps) == n
    assert np.array_equal(steps.to_array(), whole)
    for side in ("left", "right"):
        for v in probes(whole) if n else [0.0, 1.5, math.nan]:
            assert steps.search(v, side) == int(
                np.searchsorted(whole.astype(float), v, side=side)
            ), (side, v)  # type: ignore[call-overload]
    if n:
        idx = np.sort(RNG.integers(0, n, 20))
        assert np.array_equal(steps[idx], whole[idx])
        assert np.array_equal(steps[2:-3], whole[2:-3])
        assert steps[-1] == whole[-1] and steps[0] == whole[0]
        assert steps.min() == whole.min() and steps.max() == whole.max()
        with pytest.raises(IndexError):
            steps[n]


def test_steps_fall_back_to_an_array_and_widen() -> None:
    steps = Steps()
    steps.append(np.arange(0, 10))
    steps.append(np.array([10, 12]))  # uneven: an array from here on
    assert not steps.regular
    assert steps.to_array().tolist() == [*range(11), 12] and steps.to_array().dtype == np.int32
    steps.append(np.array([2**40]))
    assert steps.to_array().dtype == np.int64 and steps[-1] == 2**40
    steps.append(np.array([2.0**40 + 0.5]))
    assert steps.to_array().dtype == np.float64 and steps[-1] == 2.0**40 + 0.5
    steps.resize(3)
    assert steps.to_array().tolist() == [0, 1, 2]


def test_steps_resize_keeps_the_progression() -> None:
    steps = Steps()
    steps.append(np.arange(0, 100, 5))
    steps.resize(1)
    steps.append(np.arange(7, 20, 7))  # a new stride after one step: still even
    assert steps.regular and steps.to_array().tolist() == [0, 7, 14]
    steps.resize(0)
    steps.append(np.array([3]))
    assert steps.regular and steps.to_array().tolist() == [3]


def test_fractional_or_decreasing_steps_are_kept_as_given() -> None:
    steps = Steps()
    steps.append(np.array([0.5, 1.0, 1.5]))
    assert not steps.regular and steps.to_array().tolist() == [0.5, 1.0, 1.5]


def test_interp_matches_numpy() -> None:
    xs = np.sort(RNG.choice(10_000, 300, replace=False)).astype(np.int32)
    ys = RNG.normal(size=300)
    for v in probes(xs)[:-6]:
        assert interp(v, xs, ys) == pytest.approx(
            float(np.interp(v, xs.astype(float), ys)), rel=1e-12, abs=1e-12
        )


def test_series_buffer_round_trips_what_it_was_given() -> None:
    buffer = SeriesBuffer(capacity=16)
    walls = 1.7e9 + np.cumsum(RNG.uniform(0.1, 0.3, 5000))
    steps = np.arange(5000, dtype=np.int64)
    values = RNG.normal(size=5000)
    attempts = np.repeat(np.array([1, 2, 3], dtype=np.int32), [2000, 2000, 1000])
    for lo in range(0, 5000, 700):
        buffer.append(
            steps[lo : lo + 700],
            values[lo : lo + 700],
            walls[lo : lo + 700],
            attempts[lo : lo + 700],
        )
    assert np.array_equal(buffer.steps, steps) and np.array_equal(buffer.values, values)
    assert np.abs(buffer.walls - walls).max() < 1e-3  # float32 offsets: about 0.1 ms here
    assert buffer.newest_wall == walls[-1]
    assert np.array_equal(buffer.attempts, attempts)
    picked = np.sort(RNG.choice(5000, 200, replace=False))
    got = buffer.attempt_breaks(picked)
    a = attempts[picked]
    assert np.array_equal(got, np.flatnonzero(a[1:] != a[:-1]) + 1)
    assert buffer.nbytes() == 12 * buffer.capacity  # steps take no memory
    assert buffer.truncate_from(2500)
    assert np.array_equal(buffer.attempts, attempts[:2500])
    assert buffer.newest_wall == pytest.approx(walls[2499], abs=1e-3)


def test_growing_arrays_fit_one_big_batch_and_grow_by_an_eighth() -> None:
    array = GrowingArray(np.float64, 1024)
    array.append(np.zeros(100_000))
    assert array.capacity == 100_000
    array.append(np.zeros(10))
    assert array.capacity == 112_500


def test_smoothed_values_computed_afresh_equal_the_float64_smoothing() -> None:
    values = RNG.normal(size=10 * CHECKPOINT + 123)
    values[[5, 5000, 9000]] = np.nan
    for kind, value in (("ema", 0.9), ("ma", 25.0), ("cma", 25.0)):
        full = make_smoother(kind, value)
        full.update(values, 0)
        compact = make_smoother(kind, value, dtype=np.float32)
        for end in (1000, 4096, 4097, 9000, len(values)):  # in pieces, as a live run grows
            compact.update(
                values[:end], max(end - 3000, 0) if kind != "ema" else len(compact.values)
            )
        assert compact.values.dtype == np.float32
        np.testing.assert_allclose(compact.values, full.values, rtol=1e-6, equal_nan=True)
        for a, b in (
            (0, 10),
            (4000, 4200),
            (4096, 8192),
            (100, len(values)),
            (len(values) - 1, len(values)),
        ):
            np.testing.assert_allclose(
                compact.compute(values, a, b),
                full.values[a:b],
                rtol=1e-12,
                atol=1e-14,
                equal_nan=True,
            )


def test_ema_restarted_in_the_middle_keeps_its_checkpoints_right() -> None:
    values = RNG.normal(size=10_000)
    smoother = EmaSmoother(0.95, dtype=np.float32)
    smoother.update(values, 0)
    changed = values.copy()
    changed[7000:] += 1.0
    smoother.update(changed, 7000)
    want, _ = ema(changed, 0.95)
    np.testing.assert_allclose(smoother.compute(changed, 8000, 9000), want[8000:9000], rtol=1e-12)


def _curve(values: np.ndarray) -> Curve:
    curve = Curve(("ema", 0.6))
    steps = np.arange(len(values), dtype=np.int64)
    curve.buffer.append(steps, values, 1.7e9 + steps * 0.25, np.ones(len(values), dtype=np.int32))
    curve.changed()
    return curve


def test_a_curve_draws_float32_smoothed_values_overall_and_exact_ones_zoomed_in() -> None:
    n = 200_000
    values = RNG.normal(1.0, 0.3, n)
    curve = _curve(values)
    want, _ = ema(values, 0.6)
    xs, ys = curve.points("step", 0.0, (0.0, n - 1.0), 1000, smoothed=True)
    assert curve.y(True).dtype == np.float32 and len(xs) < 10_000
    np.testing.assert_allclose(ys, want[xs.astype(int)], rtol=1e-7)
    xs, ys = curve.points("step", 0.0, (5000.0, 5000.0 + EXACT_SPAN - 3), 1000, smoothed=True)
    np.testing.assert_allclose(ys, want[xs.astype(int)], rtol=1e-14)
    x, raw, shown = curve.nearest("step", 0.0, 12_345.2)
    assert x == 12_345 and raw == values[12_345] and shown == pytest.approx(want[12_345], rel=1e-7)


def test_a_nearly_flat_smoothed_curve_far_from_zero_is_drawn_exactly() -> None:
    n = 50_000
    values = 1000.0 + 1e-6 * RNG.normal(size=n)  # float32 would draw it in steps
    curve = _curve(values)
    want, _ = ema(values, 0.6)
    xs, ys = curve.points("step", 0.0, (0.0, n - 1.0), 1000, smoothed=True)
    np.testing.assert_allclose(ys, want[xs.astype(int)], rtol=1e-14)


def test_peak_index_levels_are_stored_compactly() -> None:
    y = RNG.normal(size=1_000_000)
    index = PeakIndex()
    index.update(y, 0)
    x = np.arange(len(y))
    picked = decimate(x, y, (0.0, len(y) - 1.0), 1000, index=index)
    assert y[picked].max() == y.max() and y[picked].min() == y.min()
    assert index.nbytes() < 0.3 * len(y)  # levels from blocks of 16 points, a byte per block
