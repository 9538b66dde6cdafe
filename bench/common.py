"""What every benchmark shares: the result record, interleaved repetitions, scratch folders."""

from __future__ import annotations

import gc
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Result:
    """One target of one benchmark: the measured ratio against its limit."""

    bench: str
    target: str  # what is compared, in words
    ratio: float  # ours / reference (as the target defines it)
    limit: float
    higher_is_better: bool  # True: PASS when ratio >= limit; False: PASS when ratio <= limit
    ours: str  # our figure (median), with its unit
    reference: str  # the reference's figure, measured in the same run
    details: list[str] = field(default_factory=list)  # every repetition, for the report
    ci: tuple[float, float] | None = None  # 90% bootstrap interval of the median ratio
    diagnosis: str = ""  # the profiled cause, reported only while the target fails

    @property
    def within_noise(self) -> bool:
        """True when the ratio's interval straddles the limit: the verdict is not settled."""
        return self.ci is not None and self.ci[0] <= self.limit <= self.ci[1]

    @property
    def passed(self) -> bool:
        return self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def ratio_text(self) -> str:
        text = fmt_ratio(self.ratio)
        if self.ci is not None:
            text += f" (90% CI {self.ci[0]:.3g}–{self.ci[1]:.3g})"
        return text

    @property
    def limit_text(self) -> str:
        op = "≥" if self.higher_is_better else "≤"
        return f"{op} {fmt_ratio(self.limit)}"


def fmt_ratio(value: float) -> str:
    """0.0667 -> "0.0667 (1/15)": small ratios also as a fraction, which reads better."""
    if 0 < value < 0.25:
        return f"{value:.3g} (1/{1 / value:.3g})"
    return f"{value:.3g}"


def settle() -> None:
    """Collect, then freeze the heap so far (torch's modules, ...) out of the collector's sight.

    Call after the imports and warm-ups, before timing: otherwise a full collection scans the
    ~200,000 objects torch brings (0.1-0.2 s here) and lands at random in a timed loop.
    """
    gc.collect()
    gc.freeze()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """A 90% bootstrap interval of the median (None for fewer than 5 values)."""
    if len(values) < 5:
        return None
    rng = np.random.default_rng(seed)
    samples = rng.choice(np.asarray(values, dtype=float), size=(4000, len(values)))
    lo, hi = np.percentile(np.median(samples, axis=1), [5, 95])
    return float(lo), float(hi)


def interleave(
    variants: dict[str, Callable[[int], dict[str, float]]], reps: int
) -> dict[str, list[dict[str, float]]]:
    """Run each variant ``reps`` times, alternating the order (A B, B A, A B, ...).

    A variant takes the repetition's index and returns named measurements. Alternating the
    order cancels a drift of the machine's speed and any advantage of going first or second.
    """
    out: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    names = list(variants)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else reversed(names):
            out[name].append(variants[name](rep))
    return out


def paired_ratios(
    ours: list[dict[str, float]], ref: list[dict[str, float]], key_ours: str, key_ref: str
) -> list[float]:
    """Per repetition, ours[key_ours] / ref[key_ref] (both measured next to each other)."""
    return [o[key_ours] / r[key_ref] for o, r in zip(ours, ref, strict=True)]


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"traindesk-bench-{prefix}-") as tmp:
        yield Path(tmp)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def random_walk(n: int, seed: int, start: float, scale: float) -> list[float]:
    """``n`` realistic metric values: a noisy, decaying curve of full-precision floats."""
    rng = np.random.default_rng(seed)
    trend = start * np.exp(-3.0 * np.arange(n) / max(1, n)) + 0.1 * start
    noise = rng.normal(0.0, scale, n)
    return [float(v) for v in np.abs(trend + noise)]
