"""flat_out: logging as fast as Python can, 10 keys a step, loses nothing and stays bounded.

``bench/scripts/flat_out.py`` (no torch) logs 10 keys per step through ``trainer.init`` /
``run.log`` flat out for 30 s (10 s with ``--quick``), reusing one dict for every step, as its
own process with the default log buffer (``TRAINDESK_LOG_BUFFER``: 100,000 points). The
journal writer (about 1.5 µs a point) cannot keep up, so ``log()`` waits for it (back-pressure)
and ``finish()`` writes the rest. Read back afterwards from the journal: (a) the points stored
against the points logged, with the final status (a status other than ``finished`` scores 0);
(b) the trainer process's peak RSS (``VmHWM``) above its RSS after ``trainer.init``,
against 300 MB. Before the buffer was bounded the same loop grew by 1.7-4.4 GB and lost
12-55% of its steps (issue 14).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result, scratch

NAME = "flat_out"
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "scripts" / "flat_out.py"
KEYS = 10
RSS_LIMIT = 300 * 2**20


def _flat_out(root: Path, seconds: float) -> tuple[dict[str, float], float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TRAINDESK_LOG_BUFFER", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(root), str(seconds), str(KEYS)],
        capture_output=True, text=True, env=env, timeout=seconds * 20 + 120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def run(quick: bool) -> list[Result]:
    from trainer.journal.reader import JournalReader

    seconds = 10.0 if quick else 30.0
    with scratch(NAME) as root:
        got, wall = _flat_out(root, seconds)
        with JournalReader(root / "flat") as reader:
            status = reader.run_info().status
            stored = sum(len(reader.series(f"k{i}").steps) for i in range(KEYS))
    logged = int(got["steps"]) * KEYS
    complete = stored / logged if status == "finished" else 0.0
    grew = float(got["peak_rss"] - got["start_rss"])
    rate = logged / seconds / 1000
    finish = wall - seconds
    return [
        Result(
            bench=f"{NAME} (a)",
            target=f"points in the journal / points logged, status finished ({KEYS} keys/step "
            f"flat out for {seconds:.0f} s)",
            ratio=complete,
            limit=1.0,
            higher_is_better=True,
            ours=f"{stored:,} of {logged:,} points ({got['steps']:,} steps), {status}",
            reference=f"{logged:,} points logged at {rate:.0f} k points/s",
            details=[
                f"log() waited {got['throttled_s']:.1f} s of {seconds:.0f} s for the writer "
                f"(buffer {got['max_queued']:,} points); the process ran {wall:.1f} s in all, "
                f"about {max(0.0, finish):.1f} s of it starting and finishing"
            ],
        ),
        Result(
            bench=f"{NAME} (b)",
            target="the trainer's peak RSS above its start / 300 MB (same run)",
            ratio=grew / RSS_LIMIT,
            limit=1.0,
            higher_is_better=False,
            ours=f"+{grew / 2**20:.0f} MB (start {got['start_rss'] / 2**20:.0f} MB, peak "
            f"{got['peak_rss'] / 2**20:.0f} MB)",
            reference="300 MB",
        ),
    ]
