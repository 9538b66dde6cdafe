"""The charts' Qt-free rules and run grouping: filter, smoothing rule, y range, crosshair
lookup, group mean and band. No QApplication here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from desktop_app.charts.aggregate import (
    UNSET,
    RunGrouping,
    aggregate,
    config_keys,
    flat_config,
    group_runs,
    reduce_columns,
)
from desktop_app.charts.rules import (
    key_matches,
    smooth_by_default,
    value_at_or_before,
    y_range,
)


@pytest.mark.parametrize(
    ("key", "pattern", "shown"),
    [
        ("train/loss", "", True),
        ("train/loss", "LOSS", True),
        ("val/accuracy", "loss", False),
        ("val/loss", "train/*", False),
        ("train/loss", "train/*", True),
        ("perf/steps_per_s", "*per*", True),
        ("val/acc", "loss, acc", True),
        ("val/acc", "lo?s", False),
        ("val/loss", "*/lo?s", True),
    ],
)
def test_key_filter(key: str, pattern: str, shown: bool) -> None:
    assert key_matches(key, pattern) is shown


@pytest.mark.parametrize(
    "key", ["train/lr", "lr", "train/learning_rate", "train/lr_head", "epoch", "train/step",
            "perf/steps_per_s", "system/gpu_util", "train/tokens_seen", "optim/momentum"],
)  # fmt: skip
def test_schedules_and_counters_are_not_smoothed_by_default(key: str) -> None:
    assert not smooth_by_default(key)


@pytest.mark.parametrize("key", ["train/loss", "val/accuracy", "train/grad_norm", "clr_loss"])
def test_measurements_are_smoothed_by_default(key: str) -> None:
    assert smooth_by_default(key)


def test_ignoring_outliers_leaves_a_single_spike_out() -> None:
    values = np.linspace(1.0, 2.0, 200)
    values[120] = 1e6
    plain = y_range([values])
    robust = y_range([values], ignore_outliers=True)
    assert plain is not None and robust is not None
    assert plain[1] > 1e6
    assert 2.0 <= robust[1] < 2.5 and 0.5 < robust[0] <= 1.0


def test_y_range_in_log_units_skips_values_at_or_below_zero() -> None:
    got = y_range([np.array([-1.0, 0.0, 10.0, 1000.0])], log_y=True)
    assert got is not None
    assert got[0] < 1.0 < 3.0 < got[1]
    assert y_range([np.array([np.nan])]) is None


def test_value_at_or_before_takes_the_last_point_not_after_x() -> None:
    xs = np.array([0.0, 10.0, 20.0, np.nan, 30.0])
    ys = np.array([1.0, 2.0, 3.0, np.nan, 4.0])
    assert value_at_or_before(xs, ys, 19.9) == (10.0, 2.0)
    assert value_at_or_before(xs, ys, 20.0) == (20.0, 3.0)
    assert value_at_or_before(xs, ys, -1.0) is None


def test_groups_by_a_flattened_config_key_in_value_order() -> None:
    configs = {
        "a": flat_config({"optim": {"lr": 0.1}, "seed": 1}),
        "b": flat_config({"optim": {"lr": 0.01}, "seed": 2}),
        "c": flat_config({"optim": {"lr": 0.1}, "seed": 3}),
        "d": flat_config({"seed": 4}),
    }
    groups = group_runs(configs, "optim.lr")
    assert [(g.label, g.runs) for g in groups] == [
        ("optim.lr=0.01", ("b",)),
        ("optim.lr=0.1", ("a", "c")),
        (f"optim.lr={UNSET}", ("d",)),
    ]
    assert config_keys(configs.values())[:2] == ["optim.lr", "seed"]


def test_group_mean_and_band_align_runs_on_step() -> None:
    a = (np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 3.0, 4.0]))
    b = (np.array([0, 2, 4]), np.array([3.0, 5.0, 7.0]))
    agg = aggregate([a, b])
    assert agg.steps.tolist() == [0, 1, 2, 3, 4]
    assert agg.mean.tolist() == [2.0, 2.0, 4.0, 4.0, 7.0]
    assert agg.low.tolist() == [1.0, 2.0, 3.0, 4.0, 7.0]
    assert agg.high.tolist() == [3.0, 2.0, 5.0, 4.0, 7.0]
    assert agg.count.tolist() == [2, 1, 2, 1, 1]


def test_a_step_logged_twice_counts_once_with_its_last_value() -> None:
    agg = aggregate([(np.array([0, 1, 1]), np.array([1.0, 5.0, 3.0]))])
    assert agg.mean.tolist() == [1.0, 3.0]


def test_reducing_to_pixel_columns_keeps_the_extremes() -> None:
    steps = np.arange(10_000)
    values = np.sin(steps / 100.0)
    values[5000] = 50.0
    agg = aggregate([(steps, values), (steps, values - 1.0)])
    small = reduce_columns(agg, (0.0, 9999.0), 100)
    assert len(small) <= 204
    assert small.high.max() == 50.0
    assert small.low.min() == pytest.approx(agg.low.min())


def test_a_group_takes_its_first_runs_colour_unless_another_group_has_it() -> None:
    grouping = RunGrouping("lr")
    for run, lr in (("a", 1), ("b", 2), ("c", 2), ("d", 3)):
        grouping.set_config(Path(run), {"lr": lr})
    colours = {Path("a"): "#111111", Path("b"): "#222222", Path("c"): "#333333",
               Path("d"): "#111111"}  # fmt: skip
    runs = [Path(r) for r in "abcd"]
    specs = grouping.specs(runs, ("#111111", "#999999"), colours)
    assert [(s.label, s.color, len(s.runs)) for s in specs] == [
        ("lr=1", "#111111", 1), ("lr=2", "#222222", 2), ("lr=3", "#999999", 1)
    ]  # fmt: skip
    assert grouping.keys() == ["lr"]
    assert RunGrouping().specs(runs, ("#111111",)) == ()
