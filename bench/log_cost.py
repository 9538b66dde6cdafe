"""log_cost: what ``run.log()`` costs the training loop, and how fast points reach the disk.

One scalar per step. Three things, interleaved, each on a fresh file:

* ours: ``run.log({"train/loss": x}, step=s)`` on a started Run from ``create_run`` (its
  heartbeat thread running). *Blocked* is the loop's time; *end to end* adds the final
  ``flush()`` of the journal writer (``run.finish()`` is not timed: it joins the heartbeat
  thread, which sleeps up to 0.5 s, and closes the file);
* TensorBoard: ``SummaryWriter.add_scalar("train/loss", x, s)``, the loop's time;
* raw SQLite: the same rows, prebuilt, into the same schema (``create_schema`` through a peewee
  ``SqliteDatabase``, WAL, ``synchronous=NORMAL``) with ``executemany`` in transactions of
  20,000 rows (the writer's batch), each committed.
"""

from __future__ import annotations

import time
from pathlib import Path

import peewee as pw

from bench.common import (
    Result,
    median,
    median_ci,
    paired_ratios,
    random_walk,
    scratch,
    settle,
)

NAME = "log_cost"
RAW_BATCH = 20_000
RAW_PRAGMAS = {"journal_mode": "wal", "synchronous": "normal"}
DIAGNOSIS_B = (
    "Profiled with py-spy and by swapping variants of `JournalWriter` in at run time, "
    "interleaved in one run. Per point, the caller's `run.log` costs about 0.9 µs (the dict, "
    "`Run.log`, `log_scalars`: `time.time()`, a tuple, a deque append), the writer thread's "
    "row building in `_commit_batch` about 0.5 µs and its `executemany` about 1.6 µs: even "
    "back to back that is about 3.0 µs against raw's 1.6 µs (0.53). Two things in "
    "`trainer/journal/writer.py` push it lower. (1) `log_scalars` calls `self._wake.set()` on "
    "*every* call while the queue holds `max_batch` (20,000) items or more, which is every "
    "call once a fast loop outruns the writer; `Event.set` takes a lock and notifies each "
    "time. Adding `and not self._wake.is_set()` to that test: 0.40 -> 0.49. (2) "
    "`conn.executemany(_INSERT_SCALAR, rows)` releases and retakes the GIL around each row's "
    "`sqlite3_step`; while the training thread runs Python the writer waits for the switch "
    "interval to get it back, so its SQLite work does not overlap the caller and is left to "
    "the final flush (when the loop ends, 40,000 to 70,000 of the 100,000 points are still "
    "queued). Inserting with multi-row statements (`INSERT OR REPLACE INTO scalar (...) "
    "VALUES (?, ?, ?, ?, ?), ...` for 500 rows at a time, parameters flattened with "
    "`itertools.chain.from_iterable`, the remainder with `executemany`) releases the GIL once "
    "per 500 rows. With both changes: 0.69 (unchanged writer 0.40, same run)."
)


def _ours(values: list[float], root: Path, rep: int) -> dict[str, float]:
    from trainer.api import create_run

    run = create_run(
        entry="bench", kind="api", config={}, runs_root=root, name=f"log-{rep}",
        max_steps=len(values),
    )  # fmt: skip
    run.start()
    try:
        t0 = time.perf_counter()
        for step, x in enumerate(values, 1):
            run.log({"train/loss": x}, step=step)
        t1 = time.perf_counter()
        run._writer.flush()
        t2 = time.perf_counter()
    finally:
        run.finish()
    return {"blocked": t1 - t0, "e2e": t2 - t0}


def _tensorboard(values: list[float], root: Path, rep: int) -> dict[str, float]:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(root / f"tb-{rep}"))
    try:
        t0 = time.perf_counter()
        for step, x in enumerate(values, 1):
            writer.add_scalar("train/loss", x, step)
        t1 = time.perf_counter()
    finally:
        writer.close()
    return {"blocked": t1 - t0}


def _raw(values: list[float], root: Path, rep: int) -> dict[str, float]:
    from trainer.journal.schema import create_schema

    db = pw.SqliteDatabase(str(root / f"raw-{rep}.sqlite"), pragmas=RAW_PRAGMAS)
    db.connect()
    try:
        create_schema(db)
        conn = db.connection()
        key_id = conn.execute("INSERT INTO metric_key (name) VALUES ('train/loss')").lastrowid
        # wall_ms as the writer would store it for a loop of ~5 µs per step.
        rows = [(key_id, 1, step, x, step // 200) for step, x in enumerate(values, 1)]
        sql = "INSERT INTO scalar (key_id, attempt, step, value, wall_ms) VALUES (?, ?, ?, ?, ?)"
        t0 = time.perf_counter()
        for i in range(0, len(rows), RAW_BATCH):
            conn.execute("BEGIN")
            conn.executemany(sql, rows[i : i + RAW_BATCH])
            conn.execute("COMMIT")
        t1 = time.perf_counter()
    finally:
        db.close()
    return {"e2e": t1 - t0}


def run(quick: bool) -> list[Result]:
    n = 20_000 if quick else 100_000
    reps, tb_reps = (5, 3) if quick else (7, 3)  # TensorBoard is slow: fewer repetitions
    values = random_walk(n, seed=1, start=2.5, scale=0.05)
    got: dict[str, list[dict[str, float]]] = {"ours": [], "tensorboard": [], "raw": []}
    with scratch(NAME) as root:
        _ours(values[:2000], root, -1)  # warm-up: imports, first journal
        _tensorboard(values[:2000], root, -1)
        settle()
        variants = {"ours": _ours, "tensorboard": _tensorboard, "raw": _raw}
        for rep in range(reps):
            names = ["ours", "tensorboard", "raw"] if rep < tb_reps else ["ours", "raw"]
            for name in names if rep % 2 == 0 else reversed(names):
                got[name].append(variants[name](values, root, rep))
    ours, tb, raw = got["ours"], got["tensorboard"], got["raw"]

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:.2f} µs/point"

    def rate(seconds: float) -> str:
        return f"{n / seconds / 1000:.0f} k points/s"

    blocked = paired_ratios(ours[:tb_reps], tb, "blocked", "blocked")
    speed = paired_ratios(raw, ours, "e2e", "e2e")  # rate ratio = raw time / our time
    return [
        Result(
            bench=f"{NAME} (a)",
            target=f"time the caller is blocked per point, `run.log` vs TensorBoard "
            f"`add_scalar` ({n:,} steps, 1 scalar/step)",
            ratio=median(blocked),
            limit=1 / 15,
            higher_is_better=False,
            ours=us(median([o["blocked"] for o in ours[:tb_reps]])),
            reference=f"`SummaryWriter.add_scalar` {us(median([t['blocked'] for t in tb]))}",
            details=[f"blocked ratio per repetition: {', '.join(f'{r:.4f}' for r in blocked)}"],
            ci=median_ci(blocked),
        ),
        Result(
            bench=f"{NAME} (b)",
            target=f"end-to-end rate incl. the final flush, `run.log` vs raw sqlite3 "
            f"`executemany` into the same schema ({n:,} points)",
            ratio=median(speed),
            limit=0.5,
            higher_is_better=True,
            ours=rate(median([o["e2e"] for o in ours])),
            reference=f"raw `executemany` {rate(median([r['e2e'] for r in raw]))}",
            details=[
                f"rate ratio per repetition: {', '.join(f'{r:.3f}' for r in speed)}",
                "ours, blocked + final flush per repetition (µs/point): "
                + ", ".join(
                    f"{o['blocked'] / n * 1e6:.2f} + {(o['e2e'] - o['blocked']) / n * 1e6:.2f}"
                    for o in ours
                ),
            ],
            ci=median_ci(speed),
            diagnosis=DIAGNOSIS_B,
        ),
    ]
