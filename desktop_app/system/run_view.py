"""The selected run's own figures: CPU %, RSS and torch's GPU memory, and a memory chart.

The chart's x axis is wall time (unix seconds, shown as clock time), so it can be linked to
another plot that also uses wall time (``view.plot.setXLink(other)``). Its curves are made once
per (GPU, figure) and only ever ``setData``-ed.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from desktop_app.system.formatting import fmt_bytes, fmt_percent, fmt_used_total
from desktop_app.system.run_samples import RunFigures, SampleHistory, SeriesKey

_GiB = float(1024**3)
_COLORS = ("#2563eb", "#16a34a", "#db2777", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563")
_STYLES = {
    "torch_reserved": Qt.PenStyle.SolidLine,
    "torch_allocated": Qt.PenStyle.DashLine,
    "mem_used": Qt.PenStyle.DotLine,
}
_NAMES = {"torch_reserved": "reserved", "torch_allocated": "allocated", "mem_used": "device used"}


class RunSystemView(QWidget):
    """Shows one run's newest system sample and its GPU memory history."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No run selected")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.process = QLabel()
        self.gpus = QLabel()
        self.gpus.setTextFormat(Qt.TextFormat.RichText)
        for label in (self.process, self.gpus):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.plot.setMinimumHeight(140)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("left", "GPU memory (GiB)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.legend = self.plot.addLegend(offset=(8, 4), colCount=3)
        self._curves: dict[SeriesKey, pg.PlotDataItem] = {}
        self._in_legend: set[SeriesKey] = set()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.process)
        layout.addWidget(self.gpus)
        layout.addWidget(self.plot, 1)
        layout.addStretch(0)  # takes the space while the chart is hidden
        self.plot.hide()  # shown once there is a memory history to draw
        self.show_message("No run selected", "")

    @property
    def curves(self) -> dict[SeriesKey, pg.PlotDataItem]:
        """The persistent curve items, by (GPU index, figure)."""
        return dict(self._curves)

    def show_message(self, title: str, text: str) -> None:
        """A title and a line of text instead of figures (no run, no samples, an error)."""
        self.title.setText(title)
        self.process.setText(text)
        self.process.setVisible(bool(text))
        self.gpus.clear()
        self.gpus.hide()

    def show_figures(self, name: str, figures: RunFigures | None) -> None:
        """The newest sample's figures, or a note that the run has none yet."""
        self.title.setText(f"Run {name}")
        self.process.show()
        if figures is None:
            self.process.setText("No system samples yet (the trainer writes one every 2 s)")
            self.gpus.hide()
            return
        age = max(time.time() - figures.wall, 0.0)
        when = time.strftime("%H:%M:%S", time.localtime(figures.wall))
        self.process.setText(
            f"CPU {fmt_percent(figures.cpu_percent)} · RSS {fmt_bytes(figures.rss)} · "
            f"sampled at {when}" + (f" ({age:.0f} s ago)" if age >= 10 else "")
        )
        self.gpus.setText(gpu_table(figures))
        self.gpus.setToolTip(gpu_lines(figures))
        self.gpus.show()

    def draw(self, history: SampleHistory | None) -> None:
        """Set every curve's data from ``history`` (None or empty: clear them)."""
        keys = history.keys() if history is not None else []
        for key in keys:
            if key not in self._curves:
                self._curves[key] = self._make_curve(key)
        self.plot.setVisible(bool(keys))
        walls = history.walls if history is not None else np.empty(0)
        for key, curve in self._curves.items():
            if history is not None and key in keys:
                curve.setData(walls, history.series(*key) / _GiB, connect="finite")
                if key not in self._in_legend:
                    self.legend.addItem(curve, curve_name(key))
                    self._in_legend.add(key)
            else:
                curve.setData([], [])
                if key in self._in_legend:
                    self.legend.removeItem(curve)
                    self._in_legend.discard(key)

    def _make_curve(self, key: SeriesKey) -> pg.PlotDataItem:
        index, kind = key
        pen = pg.mkPen(_COLORS[index % len(_COLORS)], width=1, style=_STYLES[kind])
        curve = pg.PlotDataItem(pen=pen)  # unnamed: the legend lists only curves with data
        curve.setDownsampling(auto=True, method="peak")
        self.plot.addItem(curve)
        return curve


def curve_name(key: SeriesKey) -> str:
    """``"GPU 0 reserved"``: a curve's name in the legend."""
    return f"GPU {key[0]} {_NAMES[key[1]]}"


def gpu_table(figures: RunFigures) -> str:
    """The run's GPUs as a small HTML table: torch's figures, then the device's."""
    if not figures.gpus:
        return "No GPU in use by this run"
    head = ("GPU", "torch allocated", "torch reserved", "device used", "util")
    pad = "style='padding-right: 14px'"
    cells = "".join(
        f"<td align='{'left' if i == 0 else 'right'}' {pad}><b>{h}</b></td>"
        for i, h in enumerate(head)
    )
    rows = [f"<tr>{cells}</tr>"]
    for gpu in figures.gpus:
        values = (
            fmt_bytes(gpu.torch_allocated),
            fmt_bytes(gpu.torch_reserved),
            fmt_used_total(gpu.mem_used, gpu.mem_total),
            fmt_percent(gpu.util),
        )
        tds = "".join(f"<td align='right' {pad}>{v}</td>" for v in values)
        rows.append(f"<tr><td {pad}>{gpu.index}</td>{tds}</tr>")
    return f"<table cellspacing='0' cellpadding='0'>{''.join(rows)}</table>"


def gpu_lines(figures: RunFigures) -> str:
    """One line per GPU the run used: torch's figures, then the device's."""
    if not figures.gpus:
        return "No GPU in use by this run"
    lines = []
    for gpu in figures.gpus:
        util = fmt_percent(gpu.util)
        lines.append(
            f"GPU {gpu.index}: torch allocated {fmt_bytes(gpu.torch_allocated)} · "
            f"reserved {fmt_bytes(gpu.torch_reserved)} · "
            f"device {fmt_used_total(gpu.mem_used, gpu.mem_total)} · util {util}"
        )
    return "\n".join(lines)
