"""The Health panel (a dock): each followed run's heartbeat age, step rate, journal lag,
restarts and last error, with a step-rate sparkline; the ranks of runs on several processes
(torchrun); and the app's own event-loop lag, chart redraw time, memory and open journals.

A thin widget over :class:`~desktop_app.health.model.HealthModel`. The runs' journals come
through the app's followers (:class:`~desktop_app.follow.hub.FollowHub`: read on the journal
worker, and only when they changed); one slow timer (1 s) asks the tasks worker to derive each
followed run's status from its newest run row (the process and heartbeat checks) and for the
process figures. Only the table rows whose figures changed are written again. The sparklines
are persistent items, ``setData``-ed on that timer when the model changed and the panel is
shown.

Why over 400 lines: three tables (runs, ranks, the app) and their sparklines, refreshed on one
timer; the figures themselves are computed in the Qt-free health/model.py.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.charts.plot import PALETTE
from desktop_app.follow.hub import FollowHub
from desktop_app.health.model import (
    AppHealth,
    Derive,
    HealthModel,
    ProcessFigures,
    RunHealth,
    RunSample,
    read_process,
    summarize_ms,
)
from desktop_app.health.ranks import read_ranks
from desktop_app.health.ranks_view import RanksView
from desktop_app.settings.theme import Theme, style_plot
from desktop_app.status_icons import status_color, status_icon
from desktop_app.tables import read_only_table
from trainer.journal.follower import Delta
from trainer.journal.reader import EventRow, RunInfo
from trainer.resources.sizes import format_size

log = logging.getLogger(__name__)

COLUMNS = ("Run", "Status", "Beat", "Steps/s", "Lag", "Restarts", "Last error")
#: What each column means (its header's tooltip).
COLUMN_TIPS = (
    "",
    "As derived from the process and its heartbeat, with this app's heartbeat timeout",
    "Seconds since the run's last heartbeat",
    "Steps per second over the last 30 s",
    "Journal lag: how far the newest committed step is ahead of what the charts drew",
    "Restarts by this app's supervisor, else the run's attempts - 1",
    "The newest error, failed, crashed or exit event",
)
POLL_MS = 1000
#: The event-loop lag timer's interval (a stall shows as up to this much less lag than it
#: held the loop: a slower timer would wake an idle app less but see stalls smaller).
LAG_INTERVAL_MS = 100
#: Lag samples kept (a minute at LAG_INTERVAL_MS).
LAG_SAMPLES = 600
#: The app's figures summarise this many recent samples ("max over the last 10 s").
RECENT_LAG = 100
_READ_TAG = "health-read"
_PROCESS_TAG = "health-process"

#: The number of restarts the supervisor made of a run it supervises, or None.
RestartCount = Callable[[str], int | None]
#: The newest wall time the charts drew of each run, by folder.
DrawnWalls = Callable[[], dict[str, float]]
#: The charts' recent redraw times, in ms.
RedrawTimes = Callable[[], Sequence[float]]


class LoopLagMeter(QObject):
    """Measures how late a precise timer fires: the event loop's lag, sampled every
    :data:`LAG_INTERVAL_MS`. A loop never blocked gives 0-1 ms samples; a slot that holds it
    for 200 ms gives one sample of up to 200 ms."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = LAG_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.samples: deque[tuple[float, float]] = deque(maxlen=LAG_SAMPLES)  # (wall, ms)
        self._expected = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer)
        self._arm()

    def recent(self, n: int = RECENT_LAG) -> list[float]:
        """The newest ``n`` samples, in ms."""
        return [ms for _wall, ms in list(self.samples)[-n:]]

    def stop(self) -> None:
        self._timer.stop()

    def _arm(self) -> None:
        self._expected = time.perf_counter() + self.interval_ms / 1000.0
        self._timer.start(self.interval_ms)

    def _on_timer(self) -> None:
        late = max(0.0, (time.perf_counter() - self._expected) * 1000.0)
        self.samples.append((time.time(), late))
        self._arm()


class HealthPanel(QWidget):
    """Health of the followed runs (:meth:`set_runs`) and of the app."""

    #: Emitted on the GUI thread after each reading of the runs was applied.
    refreshed = Signal()

    def __init__(
        self,
        io: BackgroundIO,
        tasks: BackgroundIO,
        parent: QWidget | None = None,
        *,
        restarts: RestartCount | None = None,
        drawn: DrawnWalls | None = None,
        redraw_times: RedrawTimes | None = None,
        model: HealthModel | None = None,
        interval_ms: int = POLL_MS,
        hub: FollowHub | None = None,
    ) -> None:
        """``io`` is the journal worker (the followers read there), ``tasks`` the worker
        for the status checks and the process figures; ``hub``: the app's followers (None:
        the panel's own); ``restarts``, ``drawn`` and ``redraw_times`` come from the
        supervisor and the charts panel."""
        super().__init__(parent)
        self._io = io
        self._tasks = tasks
        self._own_hub = hub is None
        self.hub = hub if hub is not None else FollowHub(io, self)
        self._follows: dict[str, Callable[[], None]] = {}
        self._infos: dict[str, RunInfo] = {}
        self._new_events: dict[str, list[EventRow]] = {}
        self._errors: dict[str, str] = {}
        self._shown: list[RunHealth] = []
        self._restarts = restarts or (lambda _folder: None)
        self._drawn = drawn or dict
        self._redraw_times = redraw_times or (lambda: ())
        self.model = model or HealthModel()
        self.app = AppHealth()
        self._process = ProcessFigures(None, None)
        self._shut_down = False
        self._dirty = True
        self._curves: dict[str, pg.PlotDataItem] = {}

        self.table = read_only_table(COLUMNS, COLUMN_TIPS)
        self.empty = QLabel("No live or recent run to watch.")
        self.empty.setWordWrap(True)
        self._rate_box = _LazySparkline("steps/s (last 5 min)")
        self._lag_box = _LazySparkline("event-loop lag, ms (last minute)")
        self._lag_item: pg.PlotDataItem | None = None

        self.lag_label = QLabel("…")
        self.redraw_label = QLabel("…")
        self.memory_label = QLabel("…")
        self.journals_label = QLabel("…")
        app_box = QGroupBox("This app")
        app_form = QFormLayout(app_box)
        app_form.addRow("Event-loop lag", self.lag_label)
        app_form.addRow("Chart redraw", self.redraw_label)
        app_form.addRow("Memory (RSS)", self.memory_label)
        app_form.addRow("Open journals", self.journals_label)
        app_form.addRow(self._lag_box)
        runs_box = QGroupBox("Runs")
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.addWidget(self.empty)
        runs_layout.addWidget(self.table, 1)
        runs_layout.addWidget(self._rate_box)
        self.ranks = RanksView()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(runs_box, 3)
        layout.addWidget(self.ranks, 2)
        layout.addWidget(app_box, 2)

        self.meter = LoopLagMeter(self)
        self.model.add_listener(self._on_model)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)
        self._timer.start()
        self._show_rows()

    # ------------------------------------------------------------------ public
    @property
    def rate_plot(self) -> pg.PlotWidget:
        """The step-rate sparkline (made on first use)."""
        return self._rate_box.plot

    @property
    def lag_plot(self) -> pg.PlotWidget:
        """The event-loop lag sparkline (made on first use)."""
        return self._lag_box.plot

    @property
    def _lag_curve(self) -> pg.PlotDataItem:
        if self._lag_item is None:
            self._lag_item = self.lag_plot.plot(pen=pg.mkPen("#6b7280", width=1))
        return self._lag_item

    def set_runs(self, runs: Iterable[tuple[str, str]]) -> None:
        """Follow these runs ((folder, name)) through the app's followers."""
        self.model.set_runs(runs)
        if self._shut_down:
            return
        wanted = set(self.model.folders)
        for folder in [f for f in self._follows if f not in wanted]:
            self._follows.pop(folder)()
            for kept in (self._infos, self._new_events, self._errors):
                kept.pop(folder, None)
        for folder in self.model.folders:
            if folder not in self._follows:
                self._follows[folder] = self.hub.follow(
                    Path(folder), self, partial(self._on_delta, folder)
                )

    def set_heartbeat_timeout(self, seconds: float) -> None:
        """The app's heartbeat timeout (Settings) for "unresponsive"."""
        self.model.heartbeat_timeout = seconds

    def set_theme(self, theme: Theme) -> None:
        style_plot(self.rate_plot, theme)
        style_plot(self.lag_plot, theme)

    def tick(self) -> None:
        """Read the followed runs (journal worker) and the process figures (tasks worker),
        and show the app's figures and the sparklines."""
        if self._shut_down:
            return
        runs = [(f, self._infos[f], tuple(self._new_events.get(f, ()))) for f in self.model.folders
                if f in self._infos]  # fmt: skip
        errors = {f: e for f, e in self._errors.items() if f in self._follows}
        if (runs or errors) and self._tasks.submit(
            _READ_TAG,
            partial(_readings, runs, errors, self.model.derive),
            self._on_read,
            self._on_read_error,
        ):
            self._new_events.clear()
        seen = on_screen(self)
        if seen:
            self._tasks.submit(_PROCESS_TAG, read_process, self._on_process, _ignore)
        self._update_app()
        if self._dirty and seen:
            self._draw()

    def shutdown(self) -> None:
        """Stop the timers and close the readers. Call after ``io.close()``; idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self._timer.stop()
        self.meter.stop()
        self.model.remove_listener(self._on_model)
        for stop in self._follows.values():
            stop()
        self._follows.clear()
        if self._own_hub:
            self.hub.shutdown()

    def _on_delta(self, folder: str, delta: Delta) -> None:
        if self._shut_down or folder not in self._follows:
            return
        if delta.batch is None:
            self._errors[folder] = delta.error or "cannot read the journal"
            return
        self._errors.pop(folder, None)
        self._infos[folder] = delta.batch.run
        self._new_events.setdefault(folder, []).extend(delta.batch.events)

    # ------------------------------------------------------------------ results
    def _on_read(self, result: tuple[list[RunSample], dict[str, str]]) -> None:
        if self._shut_down:
            return
        samples, errors = result
        folders = self.model.folders
        self.model.apply(
            samples,
            errors=errors,
            restarts={f: n for f in folders if (n := self._restarts(f)) is not None},
            drawn={f: w for f, w in self._drawn().items() if f in folders},
        )
        self.refreshed.emit()

    def _on_read_error(self, exc: BaseException) -> None:
        log.warning("cannot read the runs' health: %s", exc)

    def _on_process(self, figures: ProcessFigures) -> None:
        self._process = figures

    def _on_model(self) -> None:
        self._dirty = True
        self._show_rows()

    # ------------------------------------------------------------------ showing
    def _update_app(self) -> None:
        lag, lag_max = summarize_ms(self.meter.recent())
        redraw, redraw_max = summarize_ms(self._redraw_times())
        self.app = AppHealth(
            lag, lag_max, redraw, redraw_max, self._process.rss, self._process.open_journals
        )
        self.lag_label.setText(_ms_text(lag, lag_max))
        self.redraw_label.setText(
            _ms_text(redraw, redraw_max) if redraw is not None else "nothing drawn yet"
        )
        self.memory_label.setText(format_size(self.app.rss) if self.app.rss else "…")
        journals = self.app.open_journals
        self.journals_label.setText("…" if journals is None else str(journals))

    def _show_rows(self) -> None:
        """Write the table rows whose figures changed (the others are left alone)."""
        rows = self.model.rows
        self.empty.setVisible(not rows)
        self.table.setVisible(bool(rows))
        if self.table.rowCount() != len(rows):
            self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            if r < len(self._shown) and self._shown[r] == row:
                continue
            cells = (
                row.name,
                row.status,
                _age_text(row),
                _rate_text(row.step_rate),
                _lag_text(row),
                str(row.restarts),
                row.last_error,
            )
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                if item.text() != text:
                    item.setText(text)
                if c == 1:
                    item.setForeground(status_color(row.status))  # readable on dark too
                    item.setIcon(status_icon(row.status))  # a drawn shape, not a font glyph
                tip = _tip(row, c)
                if item.toolTip() != tip:
                    item.setToolTip(tip)
        self._shown = rows
        self.ranks.show_rows(rows)

    def _draw(self) -> None:
        self._dirty = False
        now = time.time()
        rows = {row.folder: row for row in self.model.rows}
        for folder in [f for f in self._curves if f not in rows]:
            self.rate_plot.removeItem(self._curves.pop(folder))
        for n, (folder, row) in enumerate(rows.items()):
            curve = self._curves.get(folder)
            if curve is None:
                color = PALETTE[n % len(PALETTE)]
                curve = self._curves[folder] = self.rate_plot.plot(pen=pg.mkPen(color, width=1))
            history = row.rate_history
            xs = np.fromiter((t - now for t, _ in history), float, len(history))
            ys = np.fromiter((v for _, v in history), float, len(history))
            curve.setData(xs, ys)
        lags = list(self.meter.samples)
        self._lag_curve.setData(
            np.fromiter((t - now for t, _ in lags), float, len(lags)),
            np.fromiter((v for _, v in lags), float, len(lags)),
        )

    @property
    def curves(self) -> dict[str, pg.PlotDataItem]:
        """The persistent step-rate curves, by run folder."""
        return dict(self._curves)


class _LazySparkline(QWidget):
    """A place for a sparkline, made when first shown or used: a pyqtgraph PlotWidget costs
    about 35 ms, which the app's start-up should not pay for a tab nobody opened yet."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title
        self._plot: pg.PlotWidget | None = None
        self.setFixedHeight(80)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    @property
    def plot(self) -> pg.PlotWidget:
        if self._plot is None:
            self._plot = _sparkline(self._title)
            layout = self.layout()
            assert layout is not None
            layout.addWidget(self._plot)
        return self._plot

    def paintEvent(self, event: QPaintEvent) -> None:
        # Only what is on screen is painted (a dock behind another tab counts as "visible"
        # but is not), so the first paint is when the plot is needed: made right after it.
        super().paintEvent(event)
        if self._plot is None:
            QTimer.singleShot(0, lambda: self.plot)


def on_screen(widget: QWidget) -> bool:
    """Shown and not hidden behind another dock's tab (where ``isVisible()`` is still true)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def _sparkline(title: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setTitle(title, size="8pt")
    plot.setFixedHeight(80)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.showGrid(x=False, y=True, alpha=0.2)
    plot.getAxis("bottom").setStyle(showValues=False)
    plot.setMenuEnabled(False)
    return plot


def _readings(
    runs: Sequence[tuple[str, RunInfo, tuple[EventRow, ...]]],
    errors: dict[str, str],
    derive: Derive,
) -> tuple[list[RunSample], dict[str, str]]:
    """A reading of each run from its newest run row (on a worker: the status looks at the
    process, the ranks are a file read); no journal is read here."""
    samples = []
    for folder, info, events in runs:
        now = time.time()
        samples.append(RunSample(folder, info, derive(info, now), events, now, read_ranks(folder)))
    return samples, errors


def _ignore(_exc: BaseException) -> None:
    return None


def _ms_text(value: float | None, worst: float | None) -> str:
    if value is None or worst is None:
        return "…"
    return f"{value:.1f} ms (worst {worst:.0f} ms lately)"


def _age_text(row: RunHealth) -> str:
    if row.heartbeat_age is None:
        return "—"
    return f"{row.heartbeat_age:.1f} s"


def _rate_text(rate: float | None) -> str:
    """Steps per second; a slow run's as seconds per step (``"42 s/step"``), not ``0.0238``."""
    if rate is None:
        return "—"
    if 0 < rate < 1:
        return f"{1 / rate:.3g} s/step"
    return f"{rate:.3g}"


def _tip(row: RunHealth, column: int) -> str:
    name = COLUMNS[column]
    if name == "Last error" and row.last_error:
        return row.last_error
    if name == "Lag" and row.journal_lag is None and row.live:
        return "not charted: select the run to chart it"
    return row.folder


def _lag_text(row: RunHealth) -> str:
    if row.journal_lag is None:
        return "—"
    return f"{row.journal_lag:.2f} s"
