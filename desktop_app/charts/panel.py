"""The charts panel: every metric of the selected runs, overlaid, live. A thin widget.

Journal reads run on the background worker (:class:`~desktop_app.background.BackgroundIO`);
their batches go into the Qt-free :class:`~desktop_app.charts.model.ChartsModel` and only mark
plots dirty. One display timer does all the drawing: it skips a hidden panel, a minimised
window, collapsed, filtered-out or scrolled-away charts and charts whose data did not change.

The charts fill a grid whose column count follows the panel's width; their x ranges are linked
and their left axes kept equally wide, so the plot areas of a column line up to the pixel. A
key filter hides charts; runs may be grouped by a config key (mean and min-max band).

Why over 400 lines: the panel owns the one display timer and every decision about what to draw
(hidden, minimised, scrolled away, unchanged); the plots and the model are their own modules.
"""

from __future__ import annotations

import html
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QScrollArea, QStackedWidget, QVBoxLayout, QWidget

from desktop_app.background import BackgroundIO
from desktop_app.charts.aggregate import GroupSpec, RunGrouping
from desktop_app.charts.axes import YAxis
from desktop_app.charts.chart_theme import ChartTheme, chart_theme, current_chart_theme
from desktop_app.charts.feed import live_limit
from desktop_app.charts.groups import GRID_SPACING, ChartGroup, columns_for
from desktop_app.charts.legend import Legend
from desktop_app.charts.model import (
    GROUPS,
    X_MODES,
    ChartsModel,
    Curve,
    EnvelopeRequest,
    follow_range,
    group_of,
)
from desktop_app.charts.plot import DrawContext, MetricPlot
from desktop_app.charts.reading import FINAL_STATUSES, JournalFeeds
from desktop_app.charts.rules import key_matches
from desktop_app.charts.toolbar import DEFAULT_EMA, ChartsToolbar
from desktop_app.compare.colours import PALETTE
from desktop_app.follow.hub import FollowHub
from desktop_app.settings.theme import Theme
from trainer.journal.envelope import Envelope
from trainer.journal.reader import TailBatch
from trainer.upgrade import upgrade_journal

_Done = Callable[[Envelope], None]
_Failed = Callable[[BaseException], None]

log = logging.getLogger(__name__)

DISPLAY_INTERVAL_MS = 60  # about 16 redraws a second at most
#: After this many display ticks in a row found nothing to do, the timer stops until
#: something needs drawing again (a dirty chart or flag wakes it; new points draw at once
#: anyway): an app that watches a slow run does not wake 16 times a second for nothing.
IDLE_TICKS = 3
#: A display tick draws charts for about this long (their paint comes after), then leaves
#: the rest to the next tick.
REDRAW_BUDGET_S = 0.012
#: How many recent redraw times the panel keeps (for the health panel).
REDRAW_TIMES = 100
#: The left axes are never narrower than this (pixels), so short labels do not shift them.
MIN_AXIS_WIDTH = 40
MIN_PLOT_WIDTH = 200


class ChartsPanel(QWidget):
    """One chart per metric key of the selected runs, grouped by namespace, x axes linked."""

    #: Emitted once, the first time a tick draws data with every chart made (``--screenshot``
    #: waits for it).
    firstDataDrawn = Signal()
    #: Emitted after each tick that drew something (probes and benchmarks listen).
    drawn = Signal()

    def __init__(self, io: BackgroundIO, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Made first: a dirty flag set while the panel is built wakes it (see _wake).
        self._timer = QTimer(self)
        self._timer.setInterval(DISPLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        #: True once some data has been drawn.
        self.has_drawn = False
        self.model = ChartsModel()
        self._view_io = BackgroundIO(self, name="traindesk-view")
        self._upgrade_io: BackgroundIO | None = None  # made when an old journal is opened
        self._overviews = 0  # overview reads in flight
        self._exact_waiting = False  # an exact read was held back for them
        self._aligned: tuple[int, int] | None = None  # the axes' state last lined up
        #: Viewport reads asked for by a redraw, sent once its frame is painted.
        self._unsent: list[tuple[Path, str, EnvelopeRequest, _Done, _Failed]] = []
        self._upgraded: set[Path] = set()
        self._feeds = JournalFeeds(
            io, self.apply_batch, self._on_error, self.model.reset_run, self._view_io
        )
        self.plots: dict[str, MetricPlot] = {}
        self.groups: dict[str, ChartGroup] = {}
        #: ``setData`` calls made by the display timer so far (for tests and benchmarks).
        self.draw_calls = 0
        #: How long recent redraws that drew something took, in ms (newest last).
        self.redraw_ms: deque[float] = deque(maxlen=REDRAW_TIMES)
        #: Per run folder (``str``), the wall time of the newest point drawn so far.
        self.drawn_walls: dict[str, float] = {}
        self._runs: list[tuple[Path, str]] = []
        self._colors: dict[Path, QColor] = {}
        #: A run's colour (the runs table's, so that both agree); set by the window. None:
        #: the first palette colour no selected run has.
        self.colour_of: Callable[[Path], str] | None = None
        self._x_mode = "step"
        self._log_x = False
        self._log_y = False
        self._follow = True
        self._x_range: tuple[float, float] | None = None
        self._syncing = False
        self._idle_ticks = 0
        self._structure_dirty_ = True
        self._pending_keys: list[str] = []  # keys whose charts a tick out of time left
        self._arrived: set[str] = set()  # keys with a history read not drawn yet
        self._hover: tuple[MetricPlot, float] | None = None
        self._hover_dirty_ = False
        self._shut_down = False
        self._resume_at = 0  # the chart a tick that ran out of time goes on from
        self._ignore_outliers = False
        #: The key filter; kept for the app's session, whichever runs are selected.
        self.key_filter = ""
        self.grouping = RunGrouping()
        self._group_specs: tuple[GroupSpec, ...] = ()
        self.colours: ChartTheme = current_chart_theme()

        self.toolbar = ChartsToolbar()
        self.toolbar.smoothingChanged.connect(self.set_smoothing)
        self.toolbar.xModeChanged.connect(self.set_x_mode)
        self.toolbar.logYChanged.connect(self.set_log_y)
        self.toolbar.logXChanged.connect(self.set_log_x)
        self.toolbar.followChanged.connect(self.set_follow)
        self.toolbar.outliersChanged.connect(self.set_ignore_outliers)
        self.toolbar.filterChanged.connect(self.set_key_filter)
        self.toolbar.groupByChanged.connect(self.set_group_by)
        self.legend = Legend()  # two lines at most; more scroll
        self.legend.hide()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #b91c1c; padding: 2px 6px;")
        self.banner.hide()
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #4b5563; font-size: 11pt; padding: 24px;")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.charts = QWidget()
        self._charts_layout = QVBoxLayout(self.charts)
        self._charts_layout.setContentsMargins(4, 4, 4, 4)
        for name in GROUPS:
            group = self.groups[name] = ChartGroup(name)
            group.hide()
            self._charts_layout.addWidget(group)
        for widget in (self.charts, *self.groups.values(), *(g.body for g in self.groups.values())):
            # Laid out from the top left: growing by a row of charts (as they are made, a few
            # per tick) repaints the new row only, not every chart above it.
            widget.setAttribute(Qt.WidgetAttribute.WA_StaticContents)
        self._charts_layout.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        # A scroll bar that came and went with the charts' height changed the width the
        # columns are sized for, and left a horizontal bar behind: keep it.
        self.scroll_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.scroll_area.setWidget(self.charts)
        self.scroll_area.viewport().installEventFilter(self)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.message)
        self.pages.addWidget(self.scroll_area)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.legend)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)

        self.set_smoothing("ema", DEFAULT_EMA)
        self._show_message("Select one or more runs to see their charts.")
        self._timer.start()
        # New points are drawn as soon as they arrive, not up to a tick later: the display
        # timer paces everything else (and draws what one pass left over), but waiting for
        # it would add up to DISPLAY_INTERVAL_MS to every point's way to the screen.
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(0)
        self._soon.timeout.connect(self._draw_soon)
        # A pan's reads start after its frame: run beside the painting, they held the GIL
        # in turns with it and made the frame later.
        self._send = QTimer(self)
        self._send.setSingleShot(True)
        self._send.setInterval(0)
        self._send.timeout.connect(self._send_requests)

    # The two flags that make a display tick draw: setting either wakes the timer.
    @property
    def _structure_dirty(self) -> bool:
        return self._structure_dirty_

    @_structure_dirty.setter
    def _structure_dirty(self, value: bool) -> None:
        self._structure_dirty_ = value
        if value:
            self._wake()

    @property
    def _hover_dirty(self) -> bool:
        return self._hover_dirty_

    @_hover_dirty.setter
    def _hover_dirty(self, value: bool) -> None:
        self._hover_dirty_ = value
        if value:
            self._wake()

    # ------------------------------------------------------------------ public API
    @property
    def runs(self) -> list[tuple[Path, str]]:
        """The selected runs, (folder, display name), in overlay order."""
        return list(self._runs)

    @property
    def colors(self) -> dict[Path, str]:
        """Each selected run's colour, as ``#rrggbb``."""
        return {folder: color.name() for folder, color in self._colors.items()}

    @property
    def x_mode(self) -> str:
        """The x axis: "step", "relative" or "wall"."""
        return self._x_mode

    @property
    def follow(self) -> bool:
        """True while the x axes follow the newest data."""
        return self._follow

    @property
    def x_range(self) -> tuple[float, float] | None:
        """The shared x range, in view coordinates (log10 in log x mode)."""
        return self._x_range

    def set_runs(self, runs: list[tuple[Path, str]]) -> None:
        """Overlay the run folders ``runs`` ((folder, display name), in this order).

        Runs that stay selected keep their data and colour; others are closed on the worker.
        """
        runs = [(Path(folder), name) for folder, name in runs]
        added, removed = self.model.set_runs(runs)
        self._runs = [(folder, self.model.runs[folder].name) for folder in self.model.runs]
        self._feeds.set_folders(self.model.runs)
        for folder in removed:
            self._colors.pop(folder, None)
            self.drawn_walls.pop(str(folder), None)
        self.grouping.keep(self.model.runs)
        for folder in added:
            used = {c.name() for c in self._colors.values()}
            free = [c for c in PALETTE if c not in used] or list(PALETTE)
            self._colors[folder] = QColor(self.colour_of(folder) if self.colour_of else free[0])
        self._update_groups()
        self._schedule_structure()
        if not self._timer.isActive() and not self._shut_down:
            self._timer.start()
        self._tick()

    def set_smoothing(self, kind: str, value: float = 0.0) -> None:
        """Smooth the curves (the raw curves stay, faint): ``kind`` is "none", "ema" (weight
        ``value``, 0..0.999), "ma" or "cma" (trailing or centred moving average of ``value``
        points). Raises ValueError for a bad setting."""
        changed = self.model.set_smoothing(kind, value)
        self.toolbar.show_smoothing(kind, value)
        if changed:
            self._mark_all_dirty()

    def set_x_mode(self, mode: str) -> None:
        """X axis: "step", "relative" (time since the run started) or "wall" (clock time).

        The view is reset to all the data; log x does not apply to wall time.
        """
        if mode not in X_MODES:
            raise ValueError(f"unknown x mode {mode!r}; expected one of {', '.join(X_MODES)}")
        self.toolbar.show_x_mode(mode)
        if mode == self._x_mode:
            return
        self._x_mode = mode
        if mode == "wall" and self._log_x:
            self._log_x = False
            self.toolbar.show_log(self._log_x, self._log_y)
        self._reset_x_range()

    def set_log_y(self, on: bool) -> None:
        """Log scale on the y axes (points <= 0 are not drawn)."""
        self._log_y = bool(on)
        self.toolbar.show_log(self._log_x, self._log_y)
        self._mark_all_dirty()

    def set_log_x(self, on: bool) -> None:
        """Log scale on the x axes (ignored for wall time; points at x <= 0 are not drawn)."""
        on = bool(on) and self._x_mode != "wall"
        self.toolbar.show_log(on, self._log_y)
        if on != self._log_x:
            self._log_x = on
            self._reset_x_range()

    def set_follow(self, on: bool) -> None:
        """Follow the newest data (x auto-ranged to all of it), or leave the view to the user.

        Zooming or panning a chart turns it off; a double click on a chart turns it on.
        """
        self._follow = bool(on)
        self.toolbar.show_follow(self._follow)
        if self._follow:
            self._mark_all_dirty()

    def set_ignore_outliers(self, on: bool) -> None:
        """Fit the y axes to the bulk of the values (1st-99th percentile), not every spike;
        a chart's own choice (its context menu) wins."""
        self._ignore_outliers = bool(on)
        self.toolbar.show_outliers(self._ignore_outliers)
        self._mark_all_dirty()

    def set_key_filter(self, pattern: str) -> None:
        """Show only the charts whose key matches ``pattern`` (see
        :func:`desktop_app.charts.rules.key_matches`); empty shows all."""
        self.key_filter = pattern
        if self.toolbar.filter.text() != pattern:
            self.toolbar.filter.setText(pattern)  # comes back here, changes nothing
        for group in self.groups.values():
            group.set_filter(pattern)
        self._set_columns()
        self._mark_all_dirty()
        self._update_messages()
        self._tick()

    @property
    def shown_plots(self) -> list[MetricPlot]:
        """The charts the filter shows (collapsed groups' included), in grid order."""
        return [plot for group in self.groups.values() for plot in group.shown]

    def set_group_by(self, key: str) -> None:
        """Group the runs by the config key ``key`` ("" for none): the charts then draw each
        group's mean and min-max band (in step mode) and the legend lists the groups."""
        self.grouping.key = key
        self.toolbar.show_group_keys(self.grouping.keys(), key)
        self._update_groups()

    @property
    def group_specs(self) -> tuple[GroupSpec, ...]:
        """The groups drawn now (empty while the runs are not grouped)."""
        return self._group_specs

    def set_chart_options(self, key: str, **options: bool | None) -> None:
        """A chart's own ``log_y``, ``ignore_outliers`` and ``smooth`` (None: the toolbar's,
        or the smoothing rule's). Raises KeyError for a key without a chart."""
        self.plots[key].set_options(**options)

    def set_theme(self, theme: Theme | ChartTheme) -> None:
        """Restyle the charts for a light or dark theme."""
        self.colours = chart_theme(theme) if isinstance(theme, Theme) else theme
        for plot in self.plots.values():
            plot.set_colours(self.colours)
        self._mark_all_dirty()

    def export_png(self, path: Path | str, key: str | None = None) -> Path:
        """Save the chart of ``key`` (or all charts) as a PNG, drawn with the newest data.

        Raises KeyError for a key without a chart and OSError if the file cannot be written.
        """
        if key is not None and key not in self.plots:
            raise KeyError(f"no chart for {key!r}")
        self._update_structure()
        if self._follow:
            self._apply_follow()
        ctx = self._context()
        targets = [self.plots[key]] if key is not None else list(self.plots.values())
        for plot in targets:
            self.draw_calls += plot.redraw(ctx)
        widget: QWidget = self.plots[key] if key is not None else self.charts
        for plot in targets:
            plot.set_legend_visible(True)
            plot.show_crosshair(None)
        try:
            image = widget.grab()
        finally:
            for plot in targets:
                plot.set_legend_visible(False)
            self._hover_dirty = True
        path = Path(path)
        if not image.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        return path

    def apply_batch(self, folder: Path, batch: TailBatch) -> None:
        """Take in a batch read from ``folder``'s journal; it is drawn on the next tick.

        The panel's own reads end here; tests and benchmarks may call it directly.
        """
        folder = Path(folder)
        data = self.model.runs.get(folder)
        if data is None:
            return
        first = not data.loaded
        if self.grouping.set_config(folder, batch.run.config):
            self.toolbar.show_group_keys(self.grouping.keys(), self.grouping.key)
            self._update_groups()
        if not batch.summarized and batch.run.status in FINAL_STATUSES:
            self._upgrade(folder)
        changed, events = self.model.apply(folder, batch)
        if batch.summarized and any(len(curve) > live_limit() for curve in data.curves.values()):
            # Memory is set by the screen, not by how long a run is watched: what was read
            # becomes history (read by viewport) when the run is read again from its start.
            log.info("%s: %d points in memory; reading it afresh", folder, self.model.n_points())
            self._feeds.restart(folder)
        for key in changed:
            plot = self.plots.get(key)
            if plot is None or folder not in plot.runs:
                self._structure_dirty = True
            else:
                plot.dirty = True
        if events:
            self._mark_all_dirty()
        if first:
            self._structure_dirty = True
        if (changed or events or first) and not self._soon.isActive():
            self._soon.start()

    def redraw(self, budget_s: float | None = None) -> int:
        """Draw what changed now, as the display timer does each tick (nothing while the panel
        is hidden or its window minimised). Returns the number of ``setData`` calls.

        ``budget_s`` (the display timer's): stop once the charts drawn took that long; the
        others stay dirty and go first on the next tick, so that a burst of new points on many
        charts never holds the event loop for long."""
        if self._shut_down or not self.isVisible() or self.window().isMinimized():
            return 0
        started = time.perf_counter()
        if self._structure_dirty:
            self._update_structure(None if budget_s is None else started + budget_s)
        if not self._hover_dirty and not any(plot.dirty for plot in self.plots.values()):
            # Nothing new (most ticks of an idle app): no bounds to follow, nothing to draw.
            self._align_axes()
            return 0
        if self._follow:
            self._apply_follow()
        ctx = self._context()
        calls = 0
        plots = list(self.plots.values())
        first = self._resume_at % len(plots) if plots else 0
        building = set(self._pending_keys)
        for i, plot in enumerate(plots[first:] + plots[:first]):
            if plot.dirty and not self._waits(plot, building) and self._is_shown(plot):
                calls += plot.redraw(ctx)
                self._arrived.discard(plot.key)
                if budget_s is not None and time.perf_counter() - started > budget_s:
                    self._resume_at = first + i + 1
                    if any(self.plots[key].dirty for key in self._arrived if key in self.plots):
                        # History reads came for more charts: the next ones right after this
                        # tick's paint, not a display interval later (many runs opened).
                        self._soon.start()
                    break
        if self._hover_dirty:
            self._draw_crosshair(ctx)
        self._align_axes()
        self.draw_calls += calls
        if calls:
            self.redraw_ms.append((time.perf_counter() - started) * 1000.0)
            for folder, _name in self._runs:
                wall = self.model.newest_wall_of(folder)
                if wall is not None:
                    self.drawn_walls[str(folder)] = wall
            self.drawn.emit()
            if not self.has_drawn and not self._pending_keys:  # every chart made
                self.has_drawn = True
                self.firstDataDrawn.emit()
        return calls

    def use_hub(self, hub: FollowHub) -> None:
        """Read the runs through ``hub``'s followers (one per run, shared with the other
        panels) instead of a tail reader of the charts' own; call before :meth:`set_runs`."""
        self._feeds.use_hub(hub)

    def shutdown(self) -> None:
        """Stop the timer and close every reader. Call after ``io.close()``; idempotent."""
        if self._shut_down:
            return
        self._shut_down = True
        self._timer.stop()
        self._soon.stop()
        self._send.stop()
        self._unsent.clear()
        self._view_io.close()
        if self._upgrade_io is not None:
            self._upgrade_io.close()
        self._feeds.close()

    # ------------------------------------------------------------------ reading
    def _on_error(self, folder: Path, message: str) -> None:
        self.model.set_error(folder, message)
        self._structure_dirty = True

    # ------------------------------------------------------------------ drawing
    def _tick(self) -> None:
        if self._shut_down:
            return
        self._feeds.poll()
        busy = self._soon.isActive() or self._structure_dirty or self._hover_dirty
        busy = busy or any(plot.dirty for plot in self.plots.values())
        if not self._soon.isActive():  # else it draws, now: one slice of drawing at a time
            self.redraw(REDRAW_BUDGET_S)
        if not self._runs and not self._structure_dirty:
            self._timer.stop()  # no runs, nothing to draw: no wake-ups; set_runs restarts it
            return
        self._idle_ticks = 0 if busy or not self._feeds.followed else self._idle_ticks + 1
        if self._idle_ticks >= IDLE_TICKS:
            self._timer.stop()  # the hub's followers read; _wake starts it again

    def _wake(self) -> None:
        """Something needs drawing: the display timer runs (if an idle spell had stopped it)."""
        self._idle_ticks = 0
        if not self._shut_down and not self._timer.isActive():
            self._timer.start()

    def _draw_soon(self) -> None:
        if not self._shut_down:
            self.redraw(REDRAW_BUDGET_S)

    def _is_shown(self, plot: MetricPlot) -> bool:
        """True when some of ``plot`` is on screen (not collapsed, not scrolled away)."""
        if not plot.isVisible():
            return False
        viewport = self.scroll_area.viewport()
        return QRect(plot.mapTo(viewport, QPoint(0, 0)), plot.size()).intersects(viewport.rect())

    def _context(self) -> DrawContext:
        return DrawContext(
            self.model, self._colors, self._x_mode, self._log_x, self._log_y, self._follow,
            self._request_envelope, self._ignore_outliers, self._group_specs,
        )  # fmt: skip

    def _request_envelope(self, folder: Path, key: str, request: EnvelopeRequest) -> None:
        """Read a long curve's history for the view, off the GUI thread; drawn on arrival.

        Quick overviews go first: an exact read waits while any overview is in flight (many
        runs opened together all show their whole range before any is refined)."""
        if not request.overview and self._overviews:
            curve = self._curve(folder, key)
            if curve is not None and curve.history is not None:
                curve.history.pending.discard((request.axis, False))
            self._exact_waiting = True
            return

        def settle() -> None:
            if request.overview:
                self._overviews -= 1
                self._release_exact()

        def done(envelope: Envelope) -> None:
            settle()
            curve = self._curve(folder, key)
            if curve is not None:
                curve.set_envelope(request, envelope)
                plot = self.plots.get(key)
                if plot is not None:
                    plot.dirty = True
                    if not self._reading(key):  # the chart's last read: drawn on arrival,
                        self._arrived.add(key)  # as new points are (the others by the timer)
                        if not self._soon.isActive():
                            self._soon.start()

        def failed(exc: BaseException) -> None:
            settle()
            curve = self._curve(folder, key)
            if curve is not None and curve.history is not None:
                curve.history.pending.discard((request.axis, request.overview))
            log.info("cannot read %s of %s by viewport: %s", key, folder, exc)

        if request.overview:
            self._overviews += 1
        self._unsent.append((folder, key, request, done, failed))
        if not self._send.isActive():
            self._send.start()

    def _send_requests(self) -> None:
        unsent, self._unsent = self._unsent, []
        for folder, key, request, done, failed in unsent:
            if self._shut_down or not self._feeds.request_envelope(
                folder, key, request, done, failed
            ):
                failed(RuntimeError("the reader is busy or gone"))

    def _waits(self, plot: MetricPlot, building: set[str]) -> bool:
        """True for a chart still being made (drawn once it has every run's items) or whose
        runs' overviews are coming (drawn once they all came, not once per run)."""
        return plot.key in building or bool(self._overviews and self._reading(plot.key, True))

    def _release_exact(self) -> None:
        """Ask for the exact reads held back, once no overview is in flight and every chart
        is made (a chart still to make asks for its overviews when first drawn)."""
        if not self._overviews and self._exact_waiting and not self._pending_keys:
            self._exact_waiting = False
            self._mark_all_dirty()  # now ask for the exact reads

    def _reading(self, key: str, overview: bool = False) -> bool:
        """True while a history read of ``key`` (``overview``: an overview) is in flight for
        some run."""
        for run in self.model.runs.values():
            curve = run.curves.get(key)
            if curve is None or curve.history is None:
                continue
            if any(not overview or is_overview for _axis, is_overview in curve.history.pending):
                return True
        return False

    def _upgrade(self, folder: Path) -> None:
        """An ended run's journal of an older schema: upgrade it in the background (its
        summaries built), then read it again; meanwhile it is drawn from its points."""
        if folder in self._upgraded:
            return
        self._upgraded.add(folder)
        if self._upgrade_io is None:
            self._upgrade_io = BackgroundIO(self, name="traindesk-upgrade")

        def done(changed: bool) -> None:
            if changed and folder in self.model.runs:
                log.info("%s: journal upgraded; reading it again", folder)
                self._feeds.restart(folder)

        def failed(exc: BaseException) -> None:
            log.info("cannot upgrade the journal of %s (read as it is): %s", folder, exc)

        self._upgrade_io.submit(f"upgrade-{folder}", partial(upgrade_journal, folder), done, failed)

    def _curve(self, folder: Path, key: str) -> Curve | None:
        run = self.model.runs.get(Path(folder))
        return None if run is None else run.curves.get(key)

    def _mark_all_dirty(self) -> None:
        for plot in self.plots.values():
            plot.dirty = True

    def _schedule_structure(self) -> None:
        self._structure_dirty = True
        self._mark_all_dirty()

    def _update_structure(self, deadline: float | None = None) -> None:
        """Create and remove charts for the keys of the selected runs; show a message if none.

        With ``deadline`` (a :func:`time.perf_counter` time; the display timer's), charts are
        made and given their runs' items in grid order until it has passed, at least one
        each call; the others follow on the next ticks. Making a chart and its first paint
        cost tens of ms each, and making them all at once held the event loop for a quarter
        of a second (ten charts) or more (twenty runs).
        """
        self._structure_dirty = False
        keys = self.model.keys()
        count = len(self.plots)
        for key in [k for k in self.plots if k not in keys]:
            plot = self.plots.pop(key)
            self.groups[group_of(key)].remove_plot(key)
            plot.hovered.disconnect()
            plot.setParent(None)
            plot.deleteLater()
        self._pending_keys = sorted(keys, key=lambda k: (GROUPS.index(group_of(k)), k))
        while self._pending_keys:
            key = self._pending_keys[0]
            made = key not in self.plots
            plot = self.plots[key] if not made else self._add_plot(key)
            wanted = [(f, n) for f, n in self._runs if key in self.model.runs[f].curves]
            if wanted != plot.shown_runs:
                # Items for many runs cost as much as a chart: they may take slices too.
                if not plot.sync_runs(wanted, self._colors, deadline):
                    break
                made = True
            del self._pending_keys[0]
            if made and deadline is not None and time.perf_counter() > deadline:
                break
        if self._pending_keys:
            self._structure_dirty = True
            self._soon.start()  # the next ones once this tick's charts are painted
        else:
            self._release_exact()
        if len(self.plots) != count or not self._pending_keys:  # charts came or went
            for group in self.groups.values():
                group.setVisible(bool(group.shown))
            self._set_columns()
        self._update_messages()

    def _add_plot(self, key: str) -> MetricPlot:
        plot = MetricPlot(key, colours=self.colours)
        plot.on_dirty = self._wake
        if self._x_range is not None:
            plot.vb.setXRange(*self._x_range, padding=0)
        plot.vb.sigXRangeChanged.connect(lambda _vb, _r, plot=plot: self._on_x_range(plot))
        plot.vb.sigRangeChangedManually.connect(lambda _mask: self.set_follow(False))
        plot.vb.sigResized.connect(lambda _vb, plot=plot: setattr(plot, "dirty", True))
        plot.hovered.connect(self._on_hover)
        plot.followRequested.connect(lambda: self.set_follow(True))
        plot.optionsChanged.connect(self._on_chart_options)
        self.plots[key] = plot
        group = self.groups[group_of(key)]
        group.set_filter(self.key_filter)
        group.add_plot(plot)
        return plot

    def _update_messages(self) -> None:
        errors = [f"{data.name}: {data.error}" for data in self.model.runs.values() if data.error]
        if not self._runs:
            self._show_message("Select one or more runs to see their charts.")
        elif self.plots and self.key_filter and not self.shown_plots:
            self._show_message(f"No chart matches the filter “{self.key_filter}”.")
        elif self.plots:
            self.pages.setCurrentWidget(self.scroll_area)
        elif errors and len(errors) == len(self._runs):
            self._show_message("Cannot read the journal:\n\n" + "\n".join(errors))
        elif any(not data.loaded for data in self.model.runs.values()):
            self._show_message("Reading the journals…")
        else:
            self._show_message("No metrics logged yet.")
        shown_elsewhere = self.pages.currentWidget() is self.message and errors
        self.banner.setVisible(bool(errors) and not shown_elsewhere)
        self.banner.setText("Cannot read the journal of " + "; ".join(errors))

    def _on_chart_options(self, plot: MetricPlot) -> None:
        if self.model.set_key_smoothing(plot.key, plot.smooth):
            plot.dirty = True
        self._hover_dirty = True
        self._tick()

    def _update_groups(self) -> None:
        colours = {folder: colour.name() for folder, colour in self._colors.items()}
        specs = self.grouping.specs([folder for folder, _ in self._runs], PALETTE, colours)
        if specs != self._group_specs:
            self._group_specs = specs
            self._mark_all_dirty()
        self._update_legend()

    def _align_axes(self) -> None:
        """Give every chart's left axis the width the widest labels need, so that the plot
        areas of a column start at the same pixel (their x ranges are linked already)."""
        state = (YAxis.widths_version, len(self.plots))
        if state == self._aligned:
            return  # no label width changed, no chart came or went: as they were
        self._aligned = state
        axes = [plot.getPlotItem().getAxis("left") for plot in self.plots.values()]
        if not axes:
            return
        wanted = max(MIN_AXIS_WIDTH, *(axis.natural_width() for axis in axes))
        for axis in axes:
            if axis.fixedWidth != wanted:
                axis.setWidth(wanted)

    def _update_legend(self) -> None:
        if self._group_specs:
            self.legend.setText(_LEGEND_GAP.join(
                f"<span style='color:{spec.color}'>&#9632;</span>&nbsp;"
                f"{_unbroken(spec.label)} ({_runs_text(len(spec.runs))})"
                for spec in self._group_specs
            ))  # fmt: skip
            self.legend.setVisible(True)
            return
        entries = [
            f"<span style='color:{self._colors[folder].name()}'>&#9632;</span>"
            f"&nbsp;{_unbroken(name)}"
            for folder, name in self._runs
        ]
        self.legend.setText(_LEGEND_GAP.join(entries))
        self.legend.setVisible(bool(entries))

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.pages.setCurrentWidget(self.message)

    # ------------------------------------------------------------------ x range
    def _apply_follow(self) -> None:
        bounds = self.model.x_bounds(self._x_mode, log_x=self._log_x)
        if bounds is not None:
            self._set_x_range(follow_range(bounds, self._x_range, live=self.model.any_live()))

    def _reset_x_range(self) -> None:
        self._x_range = None
        bounds = self.model.x_bounds(self._x_mode, log_x=self._log_x)
        if bounds is not None:
            self._set_x_range(follow_range(bounds, None, live=self.model.any_live()))
        self._mark_all_dirty()
        self._hover = None
        self._hover_dirty = True

    def _set_x_range(self, x_range: tuple[float, float]) -> None:
        if self._x_range is not None and all(
            math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
            for a, b in zip(x_range, self._x_range, strict=True)
        ):
            return
        self._x_range = x_range
        self._syncing = True
        try:
            for plot in self.plots.values():
                plot.vb.setXRange(*x_range, padding=0)
                plot.dirty = True
        finally:
            self._syncing = False

    def _on_x_range(self, source: MetricPlot) -> None:
        """A chart's x range changed (the user, or pyqtgraph): give it to all the others."""
        if self._syncing:
            return
        x0, x1 = source.vb.viewRange()[0]
        self._x_range = (float(x0), float(x1))
        source.dirty = True
        self._syncing = True
        try:
            for plot in self.plots.values():
                if plot is not source:
                    plot.vb.setXRange(x0, x1, padding=0)
                    plot.dirty = True
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ crosshair
    def _on_hover(self, plot: MetricPlot, x: float | None) -> None:
        self._hover = None if x is None else (plot, x)
        self._hover_dirty = True

    def _draw_crosshair(self, ctx: DrawContext) -> None:
        """The hovered x on every chart on screen, each with its runs' values there."""
        self._hover_dirty = False
        for plot in self.plots.values():
            shown = self._hover is not None and self._is_shown(plot)
            plot.show_values(ctx, self._hover[1] if self._hover and shown else None)

    # ------------------------------------------------------------------ layout
    def _set_columns(self) -> None:
        """As many columns as the width allows, but no more than the largest group fills:
        every group has the same columns, so charts are equally wide and line up."""
        fill = max((len(group.shown) for group in self.groups.values()), default=1)
        if self._pending_keys:  # the charts still to make count: no resizing as they come
            keys = set(self.plots).union(self._pending_keys)
            counts = Counter(group_of(key) for key in keys if key_matches(key, self.key_filter))
            fill = max(fill, *counts.values(), 1)
        width = self.scroll_area.viewport().width()
        columns = min(columns_for(width), max(fill, 1))
        margins = self._charts_layout.contentsMargins()
        inner = width - margins.left() - margins.right() - GRID_SPACING * (columns - 1)
        chart_width = max(inner // columns, MIN_PLOT_WIDTH)
        for group in self.groups.values():
            group.set_columns(columns, chart_width)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.scroll_area.viewport() and event.type() == QEvent.Type.Resize:
            self._set_columns()
        return super().eventFilter(watched, event)


#: Between two legend entries: the one place a line may break.
_LEGEND_GAP = "&nbsp;&nbsp;&nbsp; "


def _unbroken(name: str) -> str:
    """``name`` as legend HTML that never breaks inside: a dozen runs wrap between names."""
    return html.escape(name).replace(" ", "&nbsp;").replace("-", "\u2011")


def _runs_text(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"
