"""redraw: what one display tick of the charts costs, against plain pyqtgraph ``setData``.

8 runs x 6 keys x 200,000 points (quick: 4 runs), offscreen, in a 1400 x 1000 window where
all six charts are visible. A tick, as in a live run: each series gets 50 new points, then
everything is drawn and painted (``repaint()`` of every chart, so the time includes the
painting, not just its scheduling).

* ours: :meth:`ChartsPanel.apply_batch` for each run, then :meth:`ChartsPanel.redraw`
  (following the newest data, every chart is redrawn; each run draws its raw curve, its
  EMA-smoothed curve and its event marks, downsampled to the charts' width): 2 curves per
  series;
* plain: the same six charts as bare ``pg.PlotWidget`` s with one ``PlotDataItem`` per run
  (the raw curve only), ``setData`` with all the points, pyqtgraph's defaults (no
  downsampling, no clipping).

Our cost follows the pixels and plain pyqtgraph's the points, so --quick keeps the points per
series and halves the runs (the ratio stays comparable). The repetitions alternate between
the two (A B, B A, ...); the ratio is per repetition.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import Result, interleave, median, median_ci, random_walk, settle
from trainer.journal.reader import RunInfo, Series, TailBatch

NAME = "redraw"
KEYS = ["train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "perf/step_time"]
NEW_POINTS = 50  # per series per tick
WINDOW = (1400, 1000)
_CREATED = 1.7e9


def _series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, values (a noisy decaying curve with one spike) and wall times of ``n`` points."""
    values = np.asarray(random_walk(n, seed=seed, start=2.5, scale=0.05))
    values[n // 3] *= 8.0
    steps = np.arange(n, dtype=np.float64)
    return steps, values, _CREATED + steps * 0.05


class _Data:
    """All series at full length; the ticks reveal them ``NEW_POINTS`` at a time."""

    def __init__(self, runs: int, points: int, ticks: int) -> None:
        total = points + NEW_POINTS * ticks
        self.runs = runs
        self.start = points
        self.series = {
            (run, key): _series(total, seed=run * 100 + k)
            for run in range(runs)
            for k, key in enumerate(KEYS)
        }

    def batch(self, run: int, lo: int, hi: int) -> TailBatch:
        """A TailBatch of ``run``'s points ``lo:hi``, as a journal read returns them."""
        info = RunInfo(
            id=f"r{run}", name=f"run-{run}", entry="bench", kind="api", created=_CREATED,
            config={}, status="running", exit_reason=None, pid=None, pid_started=None,
            host="bench", attempt=1, step=hi, max_steps=None, updated=_CREATED,
            heartbeat_wall=None, heartbeat_step=None,
        )  # fmt: skip
        points = {}
        for key in KEYS:
            steps, values, walls = self.series[(run, key)]
            points[key] = Series(
                steps[lo:hi].astype(np.int64), values[lo:hi], walls[lo:hi],
                np.ones(hi - lo, dtype=np.int32),
            )  # fmt: skip
        return TailBatch(run=info, points=points)


class _Ours:
    """The ChartsPanel, fed directly (no journal reads: those are another benchmark)."""

    def __init__(self, data: _Data) -> None:
        from desktop_app.background import BackgroundIO
        from desktop_app.charts.panel import ChartsPanel

        self.data = data
        self.io = BackgroundIO()
        self.io.close()  # the panel's own reads are refused: the batches come from here
        self.panel = ChartsPanel(self.io)
        self.panel.resize(*WINDOW)
        self.panel.show()
        self.folders = [Path(f"/nonexistent/run-{run}") for run in range(data.runs)]
        self.panel.set_runs([(folder, folder.name) for folder in self.folders])
        self.end = data.start
        self._apply(0, self.end)

    def _apply(self, lo: int, hi: int) -> None:
        for run, folder in enumerate(self.folders):
            self.panel.apply_batch(folder, self.data.batch(run, lo, hi))

    def tick(self) -> float:
        t0 = time.perf_counter()
        lo, self.end = self.end, self.end + NEW_POINTS
        self._apply(lo, self.end)
        self.panel.redraw()
        for plot in self.panel.plots.values():
            plot.viewport().repaint()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.panel.shutdown()
        self.panel.close()


class _Plain:
    """Six bare PlotWidgets, one PlotDataItem per run, all points given to ``setData``."""

    def __init__(self, data: _Data) -> None:
        import pyqtgraph as pg
        from PySide6.QtWidgets import QGridLayout, QWidget

        from desktop_app.charts.plot import PALETTE

        self.data = data
        self.window = QWidget()
        self.window.resize(*WINDOW)
        grid = QGridLayout(self.window)
        self.plots = []
        self.curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        for k, key in enumerate(KEYS):
            plot = pg.PlotWidget(background="w", title=key)
            grid.addWidget(plot, k // 3, k % 3)
            self.plots.append(plot)
            for run in range(data.runs):
                self.curves[(run, key)] = plot.plot(pen=pg.mkPen(PALETTE[run], width=1))
        self.window.show()
        self.end = data.start

    def tick(self) -> float:
        t0 = time.perf_counter()
        self.end += NEW_POINTS
        for (run, key), curve in self.curves.items():
            steps, values, _walls = self.data.series[(run, key)]
            curve.setData(steps[: self.end], values[: self.end])
        for plot in self.plots:
            plot.viewport().repaint()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.window.close()


def measure(runs: int, points: int, reps: int) -> dict[str, list[dict[str, float]]]:
    """Interleaved ticks of both variants; each repetition's figure is one tick."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    warmup = 2
    data = _Data(runs, points, ticks=reps + warmup)
    ours, plain = _Ours(data), _Plain(data)
    try:
        for _ in range(warmup):  # first paints, layouts, caches
            ours.tick()
            plain.tick()
            app.processEvents()
        settle()

        def timed(tick: Callable[[], float]) -> Callable[[int], dict[str, float]]:
            return lambda _rep: {"seconds": tick()}

        return interleave({"ours": timed(ours.tick), "plain": timed(plain.tick)}, reps)
    finally:
        ours.close()
        plain.close()
        app.processEvents()


def run(quick: bool) -> list[Result]:
    points = 200_000
    runs, reps = (4, 5) if quick else (8, 9)
    got = measure(runs, points, reps)
    ours, plain = got["ours"], got["plain"]
    ratios = [o["seconds"] / p["seconds"] for o, p in zip(ours, plain, strict=True)]
    series = runs * len(KEYS)

    def ms(rows: list[dict[str, float]]) -> str:
        return f"{median([r['seconds'] for r in rows]) * 1000:.1f} ms/tick"

    return [
        Result(
            bench=NAME,
            target=f"one display tick (+{NEW_POINTS} points per series, drawn and painted) of "
            f"{runs} runs x {len(KEYS)} keys x {points:,} points, `ChartsPanel` vs plain "
            "pyqtgraph `setData` without downsampling",
            ratio=median(ratios),
            limit=1 / 5,
            higher_is_better=False,
            ours=f"{ms(ours)} (raw + EMA curves and event marks: {2 * series} curves)",
            reference=f"plain `setData` {ms(plain)} (raw only: {series} curves)",
            details=[f"ratio per repetition: {', '.join(f'{r:.4f}' for r in ratios)}"],
            ci=median_ci(ratios),
        )
    ]


if __name__ == "__main__":
    import sys

    for result in run(quick="--quick" in sys.argv):
        print(result.bench, result.verdict, result.ratio_text, result.ours, result.reference)
