"""The charts' small decisions, without Qt: which charts a filter shows, which keys are
smoothed by default, the y range of a chart, and a curve's value at a hovered x.

- **Key filter.** Words separated by spaces or commas; a chart is shown when any word matches
  its key, case-insensitively: as a glob if the word has ``*``, ``?`` or ``[`` (``train/*``,
  ``*acc*``), else as a substring (``loss``).
- **Smoothing rule.** Smoothing helps noisy measurements (losses, accuracies, norms). It
  misleads on schedules and counters, which are exact and often step-like: a smoothed
  learning-rate warm-up or step decay shows a ramp that never happened. So a key is not
  smoothed by default when its namespace is ``perf`` or ``system`` (throughput, memory,
  timings: counters and gauges), or its last path part names a schedule or a counter: a
  word ``lr`` (``lr``, ``lr_head``, ``base_lr``), ``learning_rate``, ``momentum``,
  ``weight_decay``, ``epoch(s)``, ``step(s)``, ``global_step``, ``iter(ation)(s)``,
  ``samples``, ``tokens``, ``examples``, or ending in ``_seen``. A chart's own choice
  overrides the rule.
- **Ignore outliers.** The y range spans the 1st to the 99th percentile of the values drawn
  (nearest ranks, so one spike among a hundred points is left out), plus a margin of
  :data:`OUTLIER_MARGIN` of that span on each side.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

#: Space around the data while the y range follows it, as a fraction of its span.
Y_PADDING = 0.05
#: Percentiles that bound the y range when outliers are ignored.
OUTLIER_PERCENTILES = (1.0, 99.0)
#: Space around the percentiles' range, as a fraction of it, when outliers are ignored.
OUTLIER_MARGIN = 0.1
#: Fewer values than this are all kept even when outliers are ignored.
OUTLIER_MIN_VALUES = 10

_GLOB = re.compile(r"[*?\[]")
_WORDS = re.compile(r"[\s,]+")
_NOT_SMOOTHED_NAMESPACES = frozenset({"perf", "system"})
_SCHEDULE_WORDS = frozenset({"lr", "momentum"})
_NOT_SMOOTHED_LEAVES = frozenset({
    "learning_rate", "learningrate", "weight_decay", "epoch", "epochs", "step", "steps",
    "global_step", "iter", "iters", "iteration", "iterations", "samples", "tokens", "examples",
})  # fmt: skip


def filter_words(pattern: str) -> list[str]:
    """The words of a key filter, lower-cased (none: every chart is shown)."""
    return [word for word in _WORDS.split(pattern.strip().lower()) if word]


def key_matches(key: str, pattern: str) -> bool:
    """True when the chart of ``key`` is shown under the filter ``pattern``."""
    words = filter_words(pattern)
    if not words:
        return True
    lowered = key.lower()
    for word in words:
        if _GLOB.search(word):
            if fnmatch.fnmatchcase(lowered, word):
                return True
        elif word in lowered:
            return True
    return False


def smooth_by_default(key: str) -> bool:
    """Whether ``key``'s chart is smoothed unless the user says otherwise (module docs)."""
    lowered = key.lower()
    if "/" in lowered and lowered.split("/", 1)[0] in _NOT_SMOOTHED_NAMESPACES:
        return False
    leaf = lowered.rsplit("/", 1)[-1]
    words = [w for w in re.split(r"[^a-z0-9]+", leaf) if w]
    if _SCHEDULE_WORDS.intersection(words):
        return False
    return leaf not in _NOT_SMOOTHED_LEAVES and not leaf.endswith("_seen")


def y_range(
    arrays: Iterable[np.ndarray], *, log_y: bool = False, ignore_outliers: bool = False
) -> tuple[float, float] | None:
    """The y range (log10 units with ``log_y``) that shows ``arrays``, padded; None if they
    hold no finite value (no positive one with ``log_y``)."""
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    values = np.concatenate(parts) if parts else np.empty(0)
    values = values[np.isfinite(values)]
    if log_y:
        values = np.log10(values[values > 0])
    if not len(values):
        return None
    if ignore_outliers and len(values) >= OUTLIER_MIN_VALUES:
        low_q, high_q = OUTLIER_PERCENTILES
        low = float(np.percentile(values, low_q, method="higher"))
        high = float(np.percentile(values, high_q, method="lower"))
        margin = OUTLIER_MARGIN
    else:
        low, high = float(values.min()), float(values.max())
        margin = Y_PADDING
    pad = (high - low) * margin if high > low else max(abs(high) * 0.1, 0.5)
    return low - pad, high + pad


def index_at_or_before(xs: np.ndarray | Sequence[float], x: float) -> int | None:
    """The index of the last point of ``xs`` (sorted) at or before ``x``; None if none is."""
    i = int(np.searchsorted(np.asarray(xs), x, side="right")) - 1
    return i if i >= 0 else None


def value_at_or_before(xs: np.ndarray, ys: np.ndarray, x: float) -> tuple[float, float] | None:
    """(x, y) of the last finite point at or before ``x`` of a drawn line (NaN gaps skipped,
    unsorted x allowed); None if there is none."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs <= x)
    if not keep.any():
        return None
    candidates = np.flatnonzero(keep)
    i = int(candidates[np.argmax(xs[candidates])])
    if not math.isfinite(float(ys[i])):
        return None
    return float(xs[i]), float(ys[i])
