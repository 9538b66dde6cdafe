"""Runs grouped by a config key, and each group's mean with its min-max band. Qt-free.

A run's config (the run row's ``config``) is flattened to dotted keys (``optim.lr``); runs with
the same value of the chosen key form a group (runs without the key form the group
``key=(unset)``). A group's curve is aligned on step: at each step that any of its runs
logged, the mean, the lowest and the highest value over the runs that have that step (each
run's last value at a step it logged twice).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.config import flatten

UNSET = "(unset)"


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config as dotted keys (``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}``)."""
    return flatten(config)


def config_keys(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys to group by: those whose values differ between the runs first, then the
    rest, each part sorted."""
    configs = list(configs)
    keys = sorted({key for config in configs for key in config})

    def differs(key: str) -> bool:
        values = {_label(config.get(key, UNSET)) for config in configs}
        return len(values) > 1

    return [k for k in keys if differs(k)] + [k for k in keys if not differs(k)]


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    if isinstance(value, int | float | bool) or value is None:
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


def _order(value: Any) -> tuple[int, float, str]:
    """Numbers in numeric order, then everything else by its text; unset last."""
    if value is UNSET:
        return (2, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, _label(value))


@dataclass(frozen=True)
class RunGroup:
    """The runs that share one value of the grouping key."""

    label: str  # ``key=value``, as the legend shows it
    value: str  # the value as text
    runs: tuple[Any, ...]  # the run ids (folders), in the order given


def group_runs(configs: Mapping[Any, Mapping[str, Any]], key: str) -> list[RunGroup]:
    """The runs of ``configs`` (run id -> flat config) grouped by their value of ``key``,
    groups ordered by value (numbers numerically), runs in the order given."""
    members: dict[str, list[Any]] = {}
    values: dict[str, Any] = {}
    for run, config in configs.items():
        value = config.get(key, UNSET)
        text = UNSET if value is UNSET else _label(value)
        members.setdefault(text, []).append(run)
        values.setdefault(text, value)
    ordered = sorted(members, key=lambda text: _order(values[text]))
    return [RunGroup(f"{key}={text}", text, tuple(members[text])) for text in ordered]


@dataclass(frozen=True)
class Aggregate:
    """A group's curve: per step, the mean, lowest and highest value and how many runs."""

    steps: np.ndarray  # float64, sorted
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    count: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.steps)


def _last_per_step(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique finite-valued steps, each with the run's last value there."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[keep], values[keep]
    unique, first_from_end = np.unique(steps[::-1], return_index=True)
    return unique, values[::-1][first_from_end]


def aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> Aggregate:
    """The mean and min-max of runs' (steps, values), aligned on step: each step's figures
    come from the runs that logged it."""
    runs = [_last_per_step(steps, values) for steps, values in series]
    runs = [(s, v) for s, v in runs if len(s)]
    if not runs:
        empty = np.empty(0)
        return Aggregate(empty, empty, empty, empty, np.empty(0, dtype=np.int64))
    steps = np.unique(np.concatenate([s for s, _ in runs]))
    total = np.zeros(len(steps))
    count = np.zeros(len(steps), dtype=np.int64)
    low = np.full(len(steps), math.inf)
    high = np.full(len(steps), -math.inf)
    for run_steps, values in runs:
        at = np.searchsorted(steps, run_steps)
        total[at] += values
        count[at] += 1
        low[at] = np.minimum(low[at], values)
        high[at] = np.maximum(high[at], values)
    return Aggregate(steps, total / count, low, high, count)


def reduce_columns(agg: Aggregate, x_range: tuple[float, float], width: int) -> Aggregate:
    """At most about two points a pixel column for drawing: inside ``x_range``, a column of
    more steps keeps its mean of means, its lowest low and its highest high (at the
    column's mean step); one point beyond each edge stays so the line reaches the edges."""
    if not len(agg):
        return agg
    x0, x1 = x_range
    lo = max(int(np.searchsorted(agg.steps, x0, "left")) - 1, 0)
    hi = min(int(np.searchsorted(agg.steps, x1, "right")) + 1, len(agg))
    steps, mean = agg.steps[lo:hi], agg.mean[lo:hi]
    low, high, count = agg.low[lo:hi], agg.high[lo:hi], agg.count[lo:hi]
    width = max(int(width), 1)
    if len(steps) <= 2 * width or x1 <= x0:
        return Aggregate(steps, mean, low, high, count)
    column = np.clip(((steps - x0) / (x1 - x0) * width).astype(np.int64), -1, width)
    starts = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    n = np.diff(np.r_[starts, len(steps)])
    return Aggregate(
        np.add.reduceat(steps, starts) / n,
        np.add.reduceat(mean, starts) / n,
        np.minimum.reduceat(low, starts),
        np.maximum.reduceat(high, starts),
        np.maximum.reduceat(count, starts),
    )


@dataclass(frozen=True)
class GroupSpec:
    """One group of runs as the charts draw it: its label, colour and runs."""

    label: str
    color: str
    runs: tuple[Path, ...]


@dataclass
class RunGrouping:
    """The selected runs' configs and the key they are grouped by ("" for none)."""

    key: str = ""
    configs: dict[Path, dict[str, Any]] = field(default_factory=dict)

    def set_config(self, folder: Path, config: Mapping[str, Any]) -> bool:
        """Record a run's (nested) config; True if it is new or changed."""
        flat = flat_config(config)
        if self.configs.get(folder) == flat:
            return False
        self.configs[folder] = flat
        return True

    def keep(self, folders: Iterable[Path]) -> None:
        """Forget the configs of runs no longer selected."""
        kept = set(folders)
        self.configs = {f: c for f, c in self.configs.items() if f in kept}

    def keys(self) -> list[str]:
        """The config keys to offer (those that differ between the runs first)."""
        return config_keys(self.configs.values())

    def specs(
        self,
        runs: Sequence[Path],
        palette: Sequence[str],
        colour_of: Mapping[Path, str] | None = None,
    ) -> tuple[GroupSpec, ...]:
        """The groups of ``runs`` (those whose config is known); none while no key is chosen.

        A group takes the colour of its first run (``colour_of``: the runs' own colours, so a
        group of one run looks as the run does in the table), else the first colour of
        ``palette`` no other group has."""
        if not self.key:
            return ()
        known = {folder: self.configs[folder] for folder in runs if folder in self.configs}
        groups = group_runs(known, self.key)
        colours = colour_of or {}
        used: set[str] = set()
        specs = []
        for group in groups:
            colour = next((colours[r] for r in group.runs if r in colours), None)
            if colour is None or colour in used:
                free = [c for c in palette if c not in used] or list(palette)
                colour = free[0]
            used.add(colour)
            specs.append(GroupSpec(group.label, colour, tuple(group.runs)))
        return tuple(specs)
