"""A measuring probe for benchmarks, on only when ``TRAINDESK_PROBE_FILE`` names a file.

It records two things while the app runs and writes them as JSON when the app ends
(``{"lag_ms": [...], "latency_ms": [...]}``):

* event-loop lag: a single-shot timer is armed for :data:`INTERVAL_MS` again each time it
  fires; each sample is how much later than armed it fired (``perf_counter``), in ms. A loop
  that is never blocked gives samples of about 0-1 ms; a slot that holds the loop for 200 ms
  gives one sample of up to 200 ms.
* display latency: after each charts tick that drew something (``ChartsPanel.drawn``), the age
  of the newest point drawn, ``time.time()`` minus the unix wall time at which the run logged
  it, in ms; only when the newest point changed since the previous sample.

Without the variable :meth:`Probe.from_env` returns None and nothing is created.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer

from desktop_app.charts.panel import ChartsPanel
from trainer.settings import PROBE_FILE

#: The file the probe writes its samples to, at the end; the probe is off without it.
PROBE_ENV = PROBE_FILE.name
#: The lag timer's interval.
INTERVAL_MS = 20


class Probe(QObject):
    """Samples the event loop's lag and the charts' display latency until :meth:`finish`."""

    def __init__(self, charts: ChartsPanel, path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path = path
        self.lag_ms: list[float] = []
        self.latency_ms: list[float] = []
        self._charts = charts
        self._last_wall: float | None = None
        self._expected = 0.0
        self._finished = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer)
        charts.drawn.connect(self._on_drawn)
        self._arm()

    @classmethod
    def from_env(cls, charts: ChartsPanel) -> Probe | None:
        """A running probe of ``charts`` if ``TRAINDESK_PROBE_FILE`` is set, else None."""
        path = PROBE_FILE.raw()
        return cls(charts, Path(path)) if path else None

    def _arm(self) -> None:
        self._expected = time.perf_counter() + INTERVAL_MS / 1000.0
        self._timer.start(INTERVAL_MS)

    def _on_timer(self) -> None:
        self.lag_ms.append(max(0.0, (time.perf_counter() - self._expected) * 1000.0))
        self._arm()

    def _on_drawn(self) -> None:
        newest = self._charts.model.newest_wall()
        if newest is None or newest == self._last_wall:
            return
        self._last_wall = newest
        self.latency_ms.append((time.time() - newest) * 1000.0)

    def finish(self) -> None:
        """Stop sampling and write the samples to the file (once; later calls do nothing)."""
        if self._finished:
            return
        self._finished = True
        self._timer.stop()
        self._charts.drawn.disconnect(self._on_drawn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"lag_ms": self.lag_ms, "latency_ms": self.latency_ms}
        self.path.write_text(json.dumps(data), encoding="utf-8")
