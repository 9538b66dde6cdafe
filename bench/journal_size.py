"""journal_size: bytes per point of ``journal.sqlite`` against TensorBoard's event files.

The same points go to a Run (``run.log``, then ``run.finish()``, which checkpoints the WAL into
the file) and to a ``SummaryWriter`` (``add_scalar`` per key, then ``close()``). The journal
is measured whole (run row, events, heartbeats, system samples included); TensorBoard's
folder likewise.

Wall times are simulated: the writer stores each point's wall time as milliseconds since the
run began, an integer whose size grows with the run's length, so a loop that logs 100,000
steps in half a second would make the journal look smaller than any real run's. The journal
writer's clock (and TensorBoard's ``walltime``) advances by a fixed pace per step instead, so
that the run spans about an hour (wall_ms needs 3 bytes up to 2.3 h, 4 bytes beyond).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Result, folder_bytes, random_walk, scratch

NAME = "journal_size"
SIMULATED_SPAN_S = 3600.0
KEYS = [
    ("train/loss", 2.5, 0.05),
    ("train/acc", 0.9, 0.02),
    ("train/lr", 0.003, 0.0001),
    ("train/grad_norm", 1.5, 0.3),
    ("val/loss", 2.6, 0.03),
    ("val/acc", 0.88, 0.01),
    ("perf/step_time", 0.05, 0.004),
    ("perf/tokens_per_s", 20_000.0, 800.0),
    ("perf/rss_mb", 900.0, 5.0),
    ("sys/gpu_util", 80.0, 6.0),
]


class _SimulatedTime:
    """Stands in for the ``time`` module inside ``trainer.journal.writer``: ``time()`` returns
    the simulated wall clock; everything else (``monotonic``, ...) is the real one."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextmanager
def simulated_clock() -> Iterator[_SimulatedTime]:
    from trainer.journal import writer

    clock = _SimulatedTime(time.time())
    saved = writer.time
    writer.time = clock  # type: ignore[assignment]
    try:
        yield clock
    finally:
        writer.time = saved


DIAGNOSIS = (
    "From SQLite's `dbstat`: the `scalar` table's 200,000 rows fill 1,256 pages (5.14 MB). A "
    "row's record is 20 B (a 6 B header, then key_id 1 B, attempt 0 B, step 2 B, value 8 B, "
    "wall_ms 3 B), plus 1 B of cell size and 2 B of cell pointer: 23 B at full pages. But the "
    "pages are 89% full (552,608 B unused): a WITHOUT ROWID table is an index b-tree, and "
    "SQLite's append fast path (balance_quick) serves only rowid tables, so splits leave "
    "pages partly filled. Measured on the same points: storing the wall time once per step "
    "(`trainer/journal/schema.py`: a `step_wall(attempt, step, wall_ms)` WITHOUT ROWID table, "
    "`scalar` keeping key_id, attempt, step, value; the reader joins on (attempt, step)) "
    "gives 22.4 B/point (ratio 0.445; the 1-scalar/step case grows to 36.0 B/point, 0.72, "
    "still within its target); a `VACUUM` in `JournalWriter.close()` after the checkpoint "
    "gives 23.1 B/point (0.46) and 22.9 for 1 scalar/step, at the price of rewriting the "
    "whole file at close (0.1 s for this 5 MB journal, in proportion to the size beyond)."
)


def _points(steps: int, n_keys: int) -> list[dict[str, float]]:
    series = {
        key: random_walk(steps, seed=i, start=start, scale=scale)
        for i, (key, start, scale) in enumerate(KEYS[:n_keys])
    }
    return [{key: values[s] for key, values in series.items()} for s in range(steps)]


def _journal_bytes(points: list[dict[str, float]], root: Path) -> int:
    from trainer.api import create_run

    pace = SIMULATED_SPAN_S / len(points)
    with simulated_clock() as clock:
        run = create_run(
            entry="bench", kind="api", config={}, runs_root=root, name="size",
            max_steps=len(points),
        )  # fmt: skip
        with run:
            for step, metrics in enumerate(points, 1):
                clock.now += pace
                run.log(metrics, step=step)
    return sum(p.stat().st_size for p in run.paths.root.glob("journal.sqlite*"))


def _tensorboard_bytes(points: list[dict[str, float]], root: Path) -> int:
    from torch.utils.tensorboard import SummaryWriter

    pace = SIMULATED_SPAN_S / len(points)
    wall = time.time()
    logdir = root / "tb"
    writer = SummaryWriter(str(logdir))
    for step, metrics in enumerate(points, 1):
        wall += pace
        for key, value in metrics.items():
            writer.add_scalar(key, value, step, walltime=wall)
    writer.close()
    return folder_bytes(logdir)


def _measure(steps: int, n_keys: int, limit: float) -> Result:
    points = _points(steps, n_keys)
    n = steps * n_keys
    with scratch(NAME) as root:
        ours = _journal_bytes(points, root)
        tb = _tensorboard_bytes(points, root)
    return Result(
        bench=f"{NAME} ({n_keys} scalar{'s' if n_keys > 1 else ''}/step)",
        target=f"bytes per point, journal.sqlite vs TensorBoard event file ({steps:,} steps x "
        f"{n_keys} key{'s' if n_keys > 1 else ''})",
        ratio=ours / tb,
        limit=limit,
        higher_is_better=False,
        ours=f"{ours / n:.1f} B/point ({ours / 1e6:.2f} MB)",
        reference=f"TensorBoard {tb / n:.1f} B/point ({tb / 1e6:.2f} MB)",
        details=[f"simulated run length {SIMULATED_SPAN_S / 3600:.0f} h ({n:,} points)"],
        diagnosis=DIAGNOSIS,
    )


def run(quick: bool) -> list[Result]:
    single, multi = (10_000, 2_000) if quick else (100_000, 20_000)
    return [_measure(single, 1, 1.0), _measure(multi, 10, 0.5)]
