"""summary_cost: what keeping the summaries costs the writer, side by side with a writer that
keeps none (the journal as it was before schema v2).

Both variants run the same code; the reference sets ``trainer.journal.summaries.KEEP`` off
for its repetition (a switch that exists for this benchmark only). Repetitions alternate.

* log (a), caller-blocked time per point: 100,000 steps x 1 key, ``run.log`` as in log_cost;
* log (b), end-to-end rate including the final flush, same runs;
* log (c), 20,000 steps x 10 keys, end to end;
* bytes per point of the journal (journal_size's 10-key run with simulated wall times).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Result, interleave, median, median_ci, paired_ratios, random_walk, scratch
from bench.journal_size import _journal_bytes, _points

NAME = "summary_cost"


@contextmanager
def _summaries(on: bool) -> Iterator[None]:
    from trainer.journal import summaries

    summaries.KEEP = on
    try:
        yield
    finally:
        summaries.KEEP = True


def _log(points: list[dict[str, float]], root: Path, name: str, on: bool) -> dict[str, float]:
    from trainer.api import create_run

    with _summaries(on):
        run = create_run(
            entry="bench", kind="api", config={}, runs_root=root, name=name,
            max_steps=len(points),
        )  # fmt: skip
        run.start()
        try:
            t0 = time.perf_counter()
            for step, metrics in enumerate(points, 1):
                run.log(metrics, step=step)
            t1 = time.perf_counter()
            run._writer.flush()
            t2 = time.perf_counter()
        finally:
            run.finish()
    n = sum(len(m) for m in points)
    return {"blocked": (t1 - t0) / n, "e2e": n / (t2 - t0)}


def run(quick: bool) -> list[Result]:
    steps = 20_000 if quick else 100_000
    reps = 5 if quick else 9
    one = [{"train/loss": v} for v in random_walk(steps, 1, 2.5, 0.05)]
    ten = _points(steps // 5, 10)
    with scratch("summary-cost") as root:
        got = interleave(
            {
                "ours": lambda r: _log(one, root, f"on-{r}", True),
                "ref": lambda r: _log(one, root, f"off-{r}", False),
            },
            reps,
        )
        got10 = interleave(
            {
                "ours": lambda r: _log(ten, root, f"on10-{r}", True),
                "ref": lambda r: _log(ten, root, f"off10-{r}", False),
            },
            reps,
        )
        sizes = interleave(
            {
                "ours": lambda r: {"b": _size(ten, root / f"s-on-{r}", True)},
                "ref": lambda r: {"b": _size(ten, root / f"s-off-{r}", False)},
            },
            2,
        )
    blocked = paired_ratios(got["ours"], got["ref"], "blocked", "blocked")
    rate = paired_ratios(got["ours"], got["ref"], "e2e", "e2e")
    rate10 = paired_ratios(got10["ours"], got10["ref"], "e2e", "e2e")
    n10 = sum(len(m) for m in ten)
    size = median(paired_ratios(sizes["ours"], sizes["ref"], "b", "b"))
    us = lambda rows, k: median([r[k] for r in rows]) * 1e6  # noqa: E731
    kps = lambda rows, k: median([r[k] for r in rows]) / 1e3  # noqa: E731
    return [
        Result(
            NAME + " (a)",
            "caller-blocked time per point of `run.log`, with summaries vs "
            "without (1 key): ratio <= 1.1",
            median(blocked),
            1.1,
            False,
            f"{us(got['ours'], 'blocked'):.2f} µs/point",
            f"{us(got['ref'], 'blocked'):.2f} µs/point without summaries",
            [f"ratios: {', '.join(f'{r:.3f}' for r in blocked)}"],
            median_ci(blocked),
        ),
        Result(
            NAME + " (b)",
            "end-to-end rate incl. the final flush, with summaries vs without "
            "(1 key): ratio >= 0.9",
            median(rate),
            0.9,
            True,
            f"{kps(got['ours'], 'e2e'):.0f} k points/s",
            f"{kps(got['ref'], 'e2e'):.0f} k points/s without",
            [f"ratios: {', '.join(f'{r:.3f}' for r in rate)}"],
            median_ci(rate),
        ),
        Result(
            NAME + " (c)",
            f"end-to-end rate, 10 keys per step ({n10:,} points), with "
            "summaries vs without: ratio >= 0.9",
            median(rate10),
            0.9,
            True,
            f"{kps(got10['ours'], 'e2e'):.0f} k points/s",
            f"{kps(got10['ref'], 'e2e'):.0f} k points/s without",
            [f"ratios: {', '.join(f'{r:.3f}' for r in rate10)}"],
            median_ci(rate10),
        ),
        Result(
            NAME + " (bytes)",
            "journal bytes per point with summaries vs without (10 keys, "
            "simulated 1 h): ratio <= 1.15",
            size,
            1.15,
            False,
            f"{median([s['b'] for s in sizes['ours']]) / n10:.1f} B/point",
            f"{median([s['b'] for s in sizes['ref']]) / n10:.1f} B/point without",
        ),
    ]


def _size(points: list[dict[str, float]], root: Path, on: bool) -> int:
    root.mkdir(parents=True)
    with _summaries(on):
        return _journal_bytes(points, root)
