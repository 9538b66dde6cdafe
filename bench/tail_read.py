"""tail_read: a live reader's ``tail()`` must cost what is new, not what the run holds.

Two journals are written through the real ``JournalWriter`` (10 keys per step): a big one
(1,000,000 points) and a small one (10,000 points). Each stays open in its own writer, as in a
live run. A repetition, alternating between the two: open a fresh ``JournalReader``, call
``tail()`` once (it returns everything), write 100 more steps x 10 keys = 1,000 points and
flush, then time the second ``tail()``, which returns just those 1,000 points.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import Result, interleave, median, median_ci, scratch, settle
from trainer.journal import db
from trainer.journal.reader import JournalReader
from trainer.journal.writer import JournalWriter

NAME = "tail_read"
KEYS = [
    "train/loss", "train/acc", "train/lr", "train/grad_norm", "val/loss", "val/acc",
    "perf/step_time", "perf/tokens_per_s", "perf/rss_mb", "sys/gpu_util",
]  # fmt: skip
NEW_STEPS = 100  # x 10 keys = the 1,000 new points each tail() reads


class _Journal:
    """A journal held open by its writer, growing step by step."""

    def __init__(self, root: Path, name: str, steps: int) -> None:
        self.path = root / name / "journal.sqlite"
        self.path.parent.mkdir(parents=True)
        self.step = 0
        self.writer = JournalWriter.create(
            self.path, run_id=name, name=name, entry="bench", kind="api", config={}
        )
        self.write(steps)
        self.writer.close()  # checkpoints the bulk into the file; reopen as a live run does
        self.writer = self._reopen()

    def _reopen(self) -> JournalWriter:
        return JournalWriter(self.path, db.open_writer(self.path, create=False))

    def write(self, steps: int) -> None:
        for _ in range(steps):
            self.step += 1
            s = self.step
            self.writer.log_scalars({k: s * 1e-3 + i for i, k in enumerate(KEYS)}, s)
        self.writer.flush()

    def timed_tail(self) -> dict[str, float]:
        with JournalReader(self.path) as reader:
            reader.tail()
            self.write(NEW_STEPS)
            t0 = time.perf_counter()
            batch = reader.tail()
            elapsed = time.perf_counter() - t0
        if batch.n_points != NEW_STEPS * len(KEYS):
            raise RuntimeError(f"tail() returned {batch.n_points} points, expected 1000")
        return {"seconds": elapsed}

    def close(self) -> None:
        self.writer.close()


def run(quick: bool) -> list[Result]:
    big_steps, reps = (20_000, 5) if quick else (100_000, 9)
    small_steps = 1_000
    with scratch(NAME) as root:
        big = _Journal(root, "big", big_steps)
        small = _Journal(root, "small", small_steps)
        try:
            small.timed_tail()  # warm-up
            settle()
            variants = {"big": lambda _: big.timed_tail(), "small": lambda _: small.timed_tail()}
            got = interleave(variants, reps)
        finally:
            big.close()
            small.close()
    big_s = [r["seconds"] for r in got["big"]]
    small_s = [r["seconds"] for r in got["small"]]
    ratios = [b / s for b, s in zip(big_s, small_s, strict=True)]
    n_big = big_steps * len(KEYS)
    n_small = small_steps * len(KEYS)
    return [
        Result(
            bench=NAME,
            target=f"cost of a `tail()` that reads the newest 1,000 points, journal of "
            f"{n_big:,} points vs {n_small:,} points (fresh reader each time, {reps} runs each)",
            ratio=median(ratios),
            limit=2.0,
            higher_is_better=False,
            ours=f"{median(big_s) * 1e3:.2f} ms ({n_big:,} points)",
            reference=f"{median(small_s) * 1e3:.2f} ms ({n_small:,} points)",
            ci=median_ci(ratios),
            details=[
                f"{n_big:,}-point tail() ms: " + ", ".join(f"{s * 1e3:.2f}" for s in big_s),
                f"{n_small:,}-point tail() ms: " + ", ".join(f"{s * 1e3:.2f}" for s in small_s),
            ],
        )
    ]
