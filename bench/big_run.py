"""big_run: opening and panning a very long run (10 keys x 10M steps: 100M points).

The journal is generated once and cached under ``~/.cache/traindesk-bench`` keyed by the
journal's schema version and size (it takes minutes to write): the points go in with plain
``executemany``, then the summaries are built by the same code that migrates a v1 journal.

A child process (so that its peak RSS is its own) makes an offscreen ChartsPanel, measures
its memory, then opens the run and waits until every key's chart shows the whole range from
the summaries (the overview read), timing it; then it pans and zooms over ten levels and
times each frame (setData and paint of every chart) while the finer reads arrive. The empty
panel is the reference: "above the empty app" is the figure measured from there. While a run
opens, the child also times each turn of its event loop (``processEvents``, from the call of
``set_runs``): the longest is how long the app would not answer a click or a key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import Result

NAME = "big_run"
KEYS = 10
FULL_STEPS = 10_000_000
QUICK_STEPS = 500_000
RUNS = 20
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "traindesk-bench"


def _journal(steps: int, name: str = "big") -> Path:
    from trainer.journal import schema, summaries
    from trainer.journal.writer import JournalWriter

    folder = CACHE / f"{name}-v{schema.SCHEMA_VERSION}-{KEYS}x{steps}"
    if (folder / "done").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "journal.sqlite"
    path.unlink(missing_ok=True)
    writer = JournalWriter.create(
        path, run_id="big", name="big", entry="bench", kind="api", config={}, created=1.7e9
    )
    writer.log_scalars({f"train/k{k}": 0.0 for k in range(KEYS)}, 0)
    writer.set_status("finished")
    writer.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    key_ids = [k for (k,) in conn.execute("SELECT id FROM metric_key ORDER BY id")]
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    conn.execute("BEGIN")
    conn.execute("DELETE FROM scalar")
    conn.execute("DELETE FROM summary")
    for key_id in key_ids:
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            values = np.cumsum(rng.normal(0, 0.01, n)) + 2.0
            values[rng.random(n) < 1e-5] = 50.0  # rare spikes stay visible at any zoom
            step = np.arange(start, start + n)
            conn.executemany(
                "INSERT INTO scalar (key_id, attempt, step, value, wall_ms) VALUES (?, 1, ?, ?, ?)",
                zip(
                    [key_id] * n, step.tolist(), values.tolist(), (step * 10).tolist(), strict=True
                ),
            )
    conn.execute("UPDATE meta SET value = 'building' WHERE key = 'summaries'")
    conn.execute("COMMIT")
    conn.execute("BEGIN")
    for _ in summaries.build_all(conn):
        pass
    conn.execute("UPDATE meta SET value = 'complete' WHERE key = 'summaries'")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (folder / "done").write_text("ok")
    return folder


_CHILD = r"""
import json, sys, time
from pathlib import Path
import psutil
from PySide6.QtWidgets import QApplication
app = QApplication([])
from desktop_app.background import BackgroundIO
from desktop_app.charts.panel import ChartsPanel
folders = [Path(f) for f in sys.argv[1:]]
proc = psutil.Process()
io = BackgroundIO()
panel = ChartsPanel(io)
panel.resize(1280, 800)
panel.show()
panel.set_follow(False)
for _ in range(20):
    app.processEvents()
empty_rss = proc.memory_info().rss
lags, started = [], time.perf_counter()
panel.set_runs([(f, f.name) for f in folders])
def ready():
    # Every chart on screen shows every run's full range (charts scrolled away read nothing);
    # every chart is made (they come a few per tick).
    shown = [key for key, plot in panel.plots.items() if panel._is_shown(plot)]
    return bool(shown) and len(panel.plots) == %d and all(
        len(run.curves) == %d and all(
            run.curves[key].history.overview if run.curves[key].history is not None
            else len(run.curves[key]) > 0
            for key in shown)
        for run in panel.model.runs.values())
last = started  # the gap of set_runs itself counts too
while not ready() or any(p.dirty for p in panel.plots.values() if panel._is_shown(p)):
    app.processEvents()
    now = time.perf_counter()
    lags.append(now - last)
    last = now
    if now - started > 120:
        raise SystemExit("timed out")
    time.sleep(0.002)
panel._reset_x_range()
panel.redraw()
opened = time.perf_counter() - started
frames = []
plot = next(iter(panel.plots.values()))
lo, hi = plot.vb.viewRange()[0]
for level in range(10):
    span = (hi - lo) / (2 ** level)
    for pan in range(6):
        a = lo + (hi - lo - span) * pan / 5
        plot.vb.setXRange(a, a + span, padding=0)
        t = time.perf_counter()
        panel.redraw()
        panel.grab()
        frames.append(time.perf_counter() - t)
        deadline = time.perf_counter() + 5
        while any(
            c.history and c.history.pending
            for run in panel.model.runs.values() for c in run.curves.values()
        ) and time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.002)
# VmHWM: this program's own peak (ru_maxrss would carry the parent's over exec)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"opened_s": opened, "empty_rss": empty_rss, "peak_rss": peak,
                  "frames_ms": [f * 1000 for f in frames],
                  "max_lag_ms": max(lags) * 1000 if lags else 0.0}))
io.close()
panel.shutdown()
"""


def _open(folders: list[Path]) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD % (KEYS, KEYS), *map(str, folders)],
        capture_output=True, text=True, env=env, timeout=900, check=True,
    )  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(quick: bool) -> list[Result]:
    steps = QUICK_STEPS if quick else FULL_STEPS
    got = _open([_journal(steps)])
    many_steps = 40_000 if quick else 100_000
    many = _open([_journal(many_steps, f"many{i:02d}") for i in range(RUNS)])
    frames = sorted(got["frames_ms"])
    p95 = frames[int(0.95 * (len(frames) - 1))]
    points = KEYS * steps
    above = (got["peak_rss"] - got["empty_rss"]) / 2**20
    size = f"{KEYS} keys x {steps:,} steps ({points:,} points)"
    return [
        Result(
            NAME + " (open)",
            f"open a run of {size} and draw its full range, time above the "
            "empty panel, against 1.0 s: ratio <= 1",
            got["opened_s"] / 1.0,
            1.0,
            False,
            f"{got['opened_s']:.2f} s",
            "1.0 s (target)",
            [f"event-loop gaps while opening: max {got['max_lag_ms']:.0f} ms"],
        ),
        Result(
            NAME + " (open lag)",
            f"longest event-loop gap while the {points:,}-point run opens and draws, "
            "against 100 ms: ratio <= 1",
            got["max_lag_ms"] / 100.0,
            1.0,
            False,
            f"{got['max_lag_ms']:.0f} ms",
            "100 ms (target)",
            [f"{RUNS} runs opened together: max {many['max_lag_ms']:.0f} ms"],
        ),
        Result(
            NAME + " (20 runs lag)",
            f"longest event-loop gap while {RUNS} runs of {KEYS} keys x {many_steps:,} steps "
            "open together and draw, against 100 ms: ratio <= 1",
            many["max_lag_ms"] / 100.0,
            1.0,
            False,
            f"{many['max_lag_ms']:.0f} ms",
            "100 ms (target)",
        ),
        Result(
            NAME + " (memory)",
            "peak RSS above the empty panel with that run open and panned "
            "over 10 zoom levels, against 300 MB: ratio <= 1",
            above / 300.0,
            1.0,
            False,
            f"{above:.0f} MB",
            "300 MB (target)",
        ),
        Result(
            NAME + " (20 runs)",
            f"open {RUNS} runs of {KEYS} keys x {many_steps:,} steps "
            "together and draw their full range, time above the empty panel, against "
            "1.5 s: ratio <= 1",
            many["opened_s"] / 1.5,
            1.0,
            False,
            f"{many['opened_s']:.2f} s",
            "1.5 s (target)",
            [
                f"event-loop gaps while opening: max {many['max_lag_ms']:.0f} ms",
                f"peak RSS above the empty panel: "
                f"{(many['peak_rss'] - many['empty_rss']) / 2**20:.0f} MB",
            ],
        ),
        Result(
            NAME + " (frames)",
            "pan and zoom over 10 zoom levels (60 views): frame p95 "
            "(setData + paint of all charts) against 33 ms: ratio <= 1",
            p95 / 33.0,
            1.0,
            False,
            f"p95 {p95:.1f} ms",
            "33 ms (target)",
            [f"max {frames[-1]:.1f} ms"],
        ),
    ]


if __name__ == "__main__":
    for result in run("--quick" in sys.argv):
        print(result.bench, result.verdict, f"{result.ratio:.3g}", result.ours)
    _ = time
