"""Cold start to first paint of the desktop app versus an empty PySide6 window holding one
pyqtgraph plot, each a fresh process, measured side by side (interleaved, medians).

Both render their window once as soon as their event loop runs (``grab()``: offscreen Qt
sends no paint event by itself) and write the wall time to a file; the figure is that time
minus the moment the process was spawned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, median, median_ci

NAME = "app_start"
ROOT = Path(__file__).resolve().parent.parent

REFERENCE = r"""
import sys, time
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
import pyqtgraph as pg

def first_frame():
    window.grab()
    Path(sys.argv[1]).write_text(repr(time.time()))
    app.quit()

app = QApplication([])
window = QMainWindow()
window.setCentralWidget(pg.PlotWidget())
window.resize(1000, 680)
window.show()
QTimer.singleShot(0, first_frame)
app.exec()
"""


def _first_paint(argv: list[str], marker: Path, env: dict[str, str]) -> float:
    marker.unlink(missing_ok=True)
    started = time.time()
    subprocess.run(argv, env=env, check=True, timeout=120, capture_output=True)
    return float(marker.read_text()) - started


def run(quick: bool) -> list[Result]:
    reps = 3 if quick else 7
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    ours_s: list[float] = []
    ref_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="traindesk-bench-start-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        marker = Path(tmp) / "first-paint"
        ours_argv = [sys.executable, "-m", "desktop_app", "--runs-dir", str(runs),
                     "--quit-after", "0.3"]  # fmt: skip
        ref_argv = [sys.executable, "-c", REFERENCE, str(marker)]
        ours_env = dict(env, TRAINDESK_FIRST_PAINT_FILE=str(marker))
        _first_paint(ref_argv, marker, env)  # warm the file cache for both
        _first_paint(ours_argv, marker, ours_env)
        for i in range(reps):
            pair = [(ours_argv, ours_env, ours_s), (ref_argv, env, ref_s)]
            for argv, e, out in pair if i % 2 == 0 else reversed(pair):
                out.append(_first_paint(argv, marker, e))
    ratios = [o / r for o, r in zip(ours_s, ref_s, strict=True)]
    return [
        Result(
            bench=NAME,
            target="cold start to first paint, `traindesk` (empty runs dir) vs an empty PySide6 "
            "window with one pyqtgraph plot",
            ratio=median(ratios),
            limit=2.0,
            higher_is_better=False,
            ours=f"{median(ours_s) * 1000:.0f} ms",
            reference=f"empty window + plot {median(ref_s) * 1000:.0f} ms",
            details=[
                f"ours ms: {', '.join(f'{x * 1000:.0f}' for x in ours_s)}",
                f"reference ms: {', '.join(f'{x * 1000:.0f}' for x in ref_s)}",
            ],
            ci=median_ci(ratios),
        )
    ]
