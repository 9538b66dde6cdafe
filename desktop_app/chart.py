"""The loss chart: one pyqtgraph curve of the selected run, redrawn from one display timer."""

from __future__ import annotations

import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop_app.background import BackgroundIO
from desktop_app.curve import CurveBuffer, CurveFeed
from desktop_app.runs_model import LOSS_KEY
from trainer.journal.reader import TailBatch

#: Redraw period (10 Hz) and the shortest time between two journal reads.
DISPLAY_INTERVAL_MS = 100
POLL_INTERVAL_S = 0.25
_TAIL_TAG = "chart-tail"


class LossChart(QWidget):
    """Draws ``train/loss`` of one run folder; follows it as the trainer writes."""

    #: Emitted once, the first time the curve is drawn with points.
    firstDataDrawn = Signal()

    def __init__(self, io: BackgroundIO, key: str = LOSS_KEY, parent: QWidget | None = None):
        super().__init__(parent)
        self.key = key
        self._io = io
        self._feed: CurveFeed | None = None
        self._retired: set[CurveFeed] = set()  # feeds no longer shown, closed on the worker
        self._buffer = CurveBuffer()
        self._dirty = False
        self._drawn_once = False
        self._last_poll = 0.0
        self._title = ""

        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", key)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen("#374151"))
            axis.setTextPen(pg.mkPen("#111827"))
            axis.enableAutoSIPrefix(False)  # a loss of 0.5 reads "0.5", not "500 (x0.001)"
        self.curve = self.plot.plot(pen=pg.mkPen("#2563eb", width=1))
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._set_title("select a run to see its loss")

        self._timer = QTimer(self)
        self._timer.setInterval(DISPLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    # ------------------------------------------------------------------ public
    @property
    def folder(self) -> Path | None:
        return self._feed.folder if self._feed else None

    @property
    def has_drawn(self) -> bool:
        """True once the curve has been drawn with points."""
        return self._drawn_once

    @property
    def point_count(self) -> int:
        """How many points the curve item currently draws."""
        x_data = self.curve.xData
        return 0 if x_data is None else len(x_data)

    def show_run(self, folder: Path | None, name: str = "") -> None:
        """Follow ``folder`` (None: show nothing). The old feed is closed on the worker."""
        if folder is not None and self.folder == folder:
            return
        self._retire(self._feed)
        self._feed = CurveFeed(folder, self.key) if folder is not None else None
        self._buffer = CurveBuffer()
        self._dirty = True
        self._last_poll = 0.0
        self.plot.setToolTip("")
        self._set_title(f"{name or folder.name}: {self.key}" if folder else "no run selected")
        self._tick()

    def shutdown(self) -> None:
        """Stop the timer and close every feed. Call after the worker has stopped."""
        self._timer.stop()
        self._retire(self._feed)
        self._feed = None
        for feed in self._retired:
            feed.close()
        self._retired.clear()

    # ------------------------------------------------------------------ internals
    def _retire(self, feed: CurveFeed | None) -> None:
        """Close ``feed`` on the worker, after any read of it still in flight."""
        if feed is None:
            return
        self._retired.add(feed)
        self._io.submit(
            f"close-{id(feed)}", feed.close, lambda _: self._retired.discard(feed), lambda _: None
        )

    def _set_title(self, text: str) -> None:
        if text != self._title:
            self._title = text
            self.plot.setTitle(text, color="#111827", size="11pt")

    def _tick(self) -> None:
        feed = self._feed
        now = time.monotonic()
        if feed is not None and now - self._last_poll >= POLL_INTERVAL_S:
            submitted = self._io.submit(
                _TAIL_TAG,
                feed.poll,
                lambda batch: self._on_batch(feed, batch),
                lambda exc: self._on_error(feed, exc),
            )
            if submitted:
                self._last_poll = now
        if self._dirty and self.isVisible():
            self._dirty = False
            self.curve.setData(self._buffer.steps, self._buffer.values)
            if len(self._buffer) and not self._drawn_once:
                self._drawn_once = True
                self.firstDataDrawn.emit()

    def _on_batch(self, feed: CurveFeed, batch: TailBatch) -> None:
        if feed is not self._feed:
            return  # a late answer for a run no longer shown
        if self._buffer.apply(batch, self.key):
            self._dirty = True
        suffix = self.key if len(self._buffer) else f"no {self.key} yet"
        self._set_title(f"{batch.run.name}: {suffix}")

    def _on_error(self, feed: CurveFeed, exc: BaseException) -> None:
        if feed is not self._feed:
            return
        # Stop following a journal that cannot be read; selecting the run again retries.
        self._retire(feed)
        self._feed = None
        self._set_title(f"{feed.folder.name}: cannot read the journal")
        self.plot.setToolTip(str(exc))
