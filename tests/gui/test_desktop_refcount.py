"""Regression guard: PySide6 6.12.0 on CPython 3.11 drops a reference to None per void call.

After a few thousand calls the interpreter dies ("Fatal Python error: none_dealloc"); pyqtgraph
gets there within its first frames. Painting a plot thousands of times must leave None's
reference count where it was.
"""

from __future__ import annotations

import gc
import sys

import numpy as np
import pyqtgraph as pg
import pytest
from pytestqt.qtbot import QtBot

pytestmark = pytest.mark.gui

FRAMES = 3000
#: None's count moves a little with ordinary objects; the bug takes thousands (>= 1 per call).
SLACK = 200


def test_painting_a_plot_does_not_drain_none_refcount(qtbot: QtBot) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    curve = plot.plot(pen=pg.mkPen("b", width=1))
    frames: list[None] = []
    plot.scene().sigPrepareForPaint.connect(lambda: frames.append(None))
    plot.show()
    qtbot.waitUntil(lambda: len(frames) > 0)  # before the first paint, repaint() draws nothing
    frames.clear()
    curve.setDownsampling(auto=True, method="peak")
    x = np.arange(500, dtype=np.float64)
    # Fixed axes: each frame repaints the curve, not the axes' layout (3000 frames in seconds).
    plot.setRange(xRange=(0, 500), yRange=(-1.1, 1.1), padding=0)
    plot.disableAutoRange()
    gc.collect()
    before = sys.getrefcount(None)
    for frame in range(FRAMES):
        curve.setData(x, np.sin(x / 20.0 + frame / 50.0))
        plot.viewport().repaint()
    gc.collect()
    after = sys.getrefcount(None)
    assert len(frames) >= FRAMES, "the plot was not painted"
    assert after >= before - SLACK, f"None refcount fell from {before} to {after}"
    assert not plot.grab().isNull()
