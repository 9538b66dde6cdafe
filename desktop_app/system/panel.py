"""The system panel: the GPUs (or, with none, CPU and RAM) and the selected run's own figures.

Live readings come from a :class:`SystemSampler` on its own thread (about once a second; NVML is
never called on the GUI thread) and reach the widgets through a queued signal. The selected
run's figures come from its journal's system samples, read by the app's :class:`BackgroundIO`
worker; a display timer polls and redraws the memory chart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QGroupBox,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.follow.hub import FollowHub
from desktop_app.settings.theme import DARK, LIGHT, Theme, palette_is_dark, style_plot
from desktop_app.system.formatting import fmt_used_total, fraction
from desktop_app.system.gauges import Gauge, GpuCard
from desktop_app.system.host import HostReading
from desktop_app.system.run_samples import SampleHistory, batch_from_rows, read_run_pids
from desktop_app.system.run_view import RunSystemView
from desktop_app.system.sampler import MIN_INTERVAL_S, SystemSampler, SystemSnapshot
from trainer.journal.follower import Delta
from trainer.resources.gpus import ENV_SIMULATED, GpuBackend, GpuReading, backend_from_env

log = logging.getLogger(__name__)

#: Statuses whose pid may hold a GPU right now.
LIVE_STATUSES = frozenset({"starting", "running", "paused", "stopping", "unresponsive"})
DISPLAY_INTERVAL_MS = 250
_PIDS_TAG = "system-run-pids"


class RunLike(Protocol):
    """What :meth:`SystemPanel.set_runs` needs of a run (``trainer.runs.RunSummary`` fits)."""

    @property
    def path(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...


class _Bridge(QObject):
    """Carries snapshots from the sampler's thread to the GUI thread (a queued connection)."""

    snapshot = Signal(object)


class SystemPanel(QWidget):
    """GPU gauges (or CPU/RAM), which of our runs hold each GPU, and the selected run's figures.

    ``backend`` defaults to :func:`backend_from_env` (NVML, or simulated GPUs when
    ``TRAINDESK_SIMULATED_GPUS`` is set). Call :meth:`shutdown` after ``io.close()``.
    """

    #: Emitted on the GUI thread after each snapshot is shown (the SystemSnapshot).
    snapshotShown = Signal(object)
    #: Emitted after the selected run's figures were read and shown.
    runSamplesShown = Signal()

    def __init__(
        self,
        io: BackgroundIO,
        backend: GpuBackend | None = None,
        *,
        interval_s: float = MIN_INTERVAL_S,
        parent: QWidget | None = None,
        hub: FollowHub | None = None,
    ) -> None:
        super().__init__(parent)
        self._io = io
        self._own_hub = hub is None
        #: The selected run's samples come through the app's followers (None: the panel's own).
        self.hub = hub if hub is not None else FollowHub(io, self)
        self._run_path: Path | None = None
        self._unfollow: Callable[[], None] | None = None
        self.backend = backend if backend is not None else backend_from_env()
        self._closed = False
        self._snapshot: SystemSnapshot | None = None
        self._cards: dict[int, GpuCard] = {}
        self._history = SampleHistory()
        self._run_name = ""
        self._dirty = False
        self._live_runs: tuple[tuple[str, str], ...] = ()
        self._pids_wanted: list[tuple[str, str]] | None = None
        self._pids_from_runs: dict[int, str] = {}
        self._pids_given: dict[int, str] = {}
        self._build()

        self._bridge = _Bridge(self)
        self._bridge.snapshot.connect(self._show_snapshot)
        self.sampler = SystemSampler(
            self.backend, self._bridge.snapshot.emit, interval_s=interval_s
        )
        sampler = self.sampler  # not self: the panel may be gone when the bridge is
        self._bridge.destroyed.connect(lambda *_: sampler.request_stop())
        self._timer = QTimer(self)
        self._timer.setInterval(DISPLAY_INTERVAL_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.sampler.start()

    # ------------------------------------------------------------------ public
    @property
    def last_snapshot(self) -> SystemSnapshot | None:
        """The snapshot shown last (None before the first)."""
        return self._snapshot

    @property
    def gpu_cards(self) -> list[GpuCard]:
        """The GPU cards shown, by index."""
        return [self._cards[i] for i in sorted(self._cards)]

    @property
    def selected_run(self) -> Path | None:
        return self._run_path

    @property
    def history(self) -> SampleHistory:
        """The selected run's samples read so far."""
        return self._history

    def message_text(self) -> str:
        """The panel's notice ("No NVIDIA driver found: showing CPU and RAM"), or ""."""
        return self.message.text() if self.message.isVisibleTo(self) else ""

    def set_runs(self, runs: Sequence[RunLike]) -> None:
        """The runs to recognise on the GPUs; live ones' pids are read on the IO worker."""
        live = tuple(sorted((r.path, r.name) for r in runs if r.status in LIVE_STATUSES))
        if live != self._live_runs:
            self._live_runs = live
            self._pids_wanted = list(live)

    def set_run_pids(self, pids: Mapping[int, str]) -> None:
        """pid -> run name of processes to recognise as our runs, besides :meth:`set_runs`'."""
        self._pids_given = dict(pids)
        self._push_pids()

    def set_selected_run(self, path: Path | None, name: str = "") -> None:
        """Show ``path``'s own figures (None: none), followed through the app's followers."""
        path = Path(path) if path is not None else None
        if path is not None and self.selected_run == path:
            return
        self._stop_following()
        self._run_path = path
        self._history = SampleHistory()
        self._run_name = name or (path.name if path is not None else "")
        self._dirty = True
        if path is None:
            self.run_view.show_message("No run selected", "Select a run to see its own figures")
        else:
            self.run_view.show_message(f"Run {self._run_name}", "Reading its system samples…")
            self._unfollow = self.hub.follow(path, self, partial(self._on_delta, path))
        self._tick()

    def set_interval(self, seconds: float) -> None:
        """Seconds between two GPU/CPU readings (1 s at the fastest)."""
        self.sampler.set_interval(seconds)

    def set_theme(self, theme: Theme) -> None:
        """Restyle the chart and the banner for ``theme``."""
        style_plot(self.run_view.plot, theme)
        self.simulated_banner.setStyleSheet(_banner_style(theme))

    def shutdown(self) -> None:
        """Stop the timer and the sampler (the GPU backend shuts down), close the journal.

        Call after the BackgroundIO has been closed. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        self.sampler.stop()
        self._stop_following()
        if self._own_hub:
            self.hub.shutdown()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.simulated_banner = QLabel()
        self.simulated_banner.setWordWrap(True)
        self.simulated_banner.setStyleSheet(
            _banner_style(DARK if palette_is_dark(self.palette()) else LIGHT)
        )
        self.simulated_banner.hide()
        self.message = QLabel("Reading the GPUs…")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(
            "QLabel { border: 1px solid palette(mid); border-radius: 4px; padding: 6px; }"
        )
        self.cpu_gauge = Gauge("CPU")
        self.ram_gauge = Gauge("RAM")
        host = QGroupBox("This computer")
        host_layout = QVBoxLayout(host)
        host_layout.addWidget(self.cpu_gauge)
        host_layout.addWidget(self.ram_gauge)
        cards = QWidget()
        self._cards_layout = QVBoxLayout(cards)
        self._cards_layout.setContentsMargins(0, 0, 0, 0)

        live = QWidget()
        live_layout = QVBoxLayout(live)
        for widget in (self.simulated_banner, self.message, host, cards):
            live_layout.addWidget(widget)
        live_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(live)

        self.run_view = RunSystemView()
        run_box = QGroupBox("Selected run")
        QVBoxLayout(run_box).addWidget(self.run_view)
        self._live = live
        self._run_box = run_box
        self._splitter = QSplitter(Qt.Orientation.Vertical)
        self._splitter.addWidget(scroll)
        self._splitter.addWidget(run_box)
        self._splitter.setChildrenCollapsible(False)
        self._splitter.splitterMoved.connect(self._on_user_split)
        self._user_split = False
        self._live_shape: tuple[int, bool, bool] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._splitter)
        self.run_view.show_message("No run selected", "Select a run to see its own figures")

    # ------------------------------------------------------------------ live readings
    def _show_snapshot(self, snapshot: SystemSnapshot) -> None:
        if self._closed:
            return
        self._snapshot = snapshot
        spec = getattr(self.backend, "spec", "")
        self.simulated_banner.setText(
            f"SIMULATED GPUs ({ENV_SIMULATED}={spec}): made-up figures for tests and demos, "
            "not read from any hardware"
        )
        self.simulated_banner.setVisible(snapshot.simulated)
        self._show_host(snapshot.host)
        if snapshot.error:
            notice = f"GPU readings failed: {snapshot.error}. Showing what is known."
            readings = [GpuReading(index) for index in self._cards]  # every figure "n/a"
        elif not snapshot.gpus:
            reason = snapshot.unavailable_reason or "No GPU found"
            notice = f"{reason}: showing CPU and RAM"
            readings = []
        else:
            notice, readings = "", snapshot.gpus
        self.message.setText(notice)
        self.message.setToolTip(snapshot.unavailable_reason or snapshot.error or "")
        self.message.setVisible(bool(notice))
        self._show_cards(readings, snapshot.owners)
        shape = (len(self._cards), bool(notice), snapshot.simulated)
        if shape != self._live_shape:
            self._live_shape = shape
            QTimer.singleShot(0, self._fit_live)  # once the new layout has settled
        self.snapshotShown.emit(snapshot)

    def _show_host(self, host: HostReading) -> None:
        cpu = host.cpu_percent
        cpus = f" of {host.cpu_count} CPUs" if host.cpu_count else ""
        self.cpu_gauge.set_value(
            None if cpu is None else min(cpu / 100.0, 1.0),
            "n/a" if cpu is None else f"{cpu:.0f} %{cpus}",
        )
        self.ram_gauge.set_value(
            fraction(host.mem_used, host.mem_total), fmt_used_total(host.mem_used, host.mem_total)
        )

    def _show_cards(self, readings: list[GpuReading], owners: Mapping[int, str]) -> None:
        wanted = {reading.index for reading in readings}
        for index in sorted(set(self._cards) - wanted):
            gone = self._cards.pop(index)
            self._cards_layout.removeWidget(gone)
            gone.deleteLater()
        for reading in readings:
            card = self._cards.get(reading.index)
            if card is None:
                card = self._cards[reading.index] = GpuCard(reading.index)
                position = sorted(self._cards).index(reading.index)
                self._cards_layout.insertWidget(position, card)
                card.show()  # now: a layout shows a new child only on a queued event
            card.show_reading(reading, owners)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_live()

    def _fit_live(self) -> None:
        """Give the live readings the height they need (at most 60 %), the run the rest; a
        run with no samples to chart gets only the lines that say so."""
        if self._user_split or self._closed:
            return
        total = sum(self._splitter.sizes())
        if total <= 0:
            return
        if self.run_view.plot.isHidden():
            bottom = self._run_box.sizeHint().height()
            self._splitter.setSizes([max(total - bottom, 0), bottom])
            return
        top = min(self._live.sizeHint().height() + 4, int(total * 0.6))
        self._splitter.setSizes([top, total - top])

    def _on_user_split(self, _pos: int, _index: int) -> None:
        self._user_split = True  # the user chose the sizes: stop fitting

    def _push_pids(self) -> None:
        self.sampler.set_run_pids({**self._pids_from_runs, **self._pids_given})

    def _on_pids(self, pids: dict[int, str]) -> None:
        self._pids_from_runs = pids
        self._push_pids()

    # ------------------------------------------------------------------ the selected run
    def _tick(self) -> None:
        if self._closed:
            return
        wanted = self._pids_wanted
        if wanted is not None and self._io.submit(
            _PIDS_TAG,
            lambda: read_run_pids(wanted),
            self._on_pids,
            lambda exc: log.warning("cannot read the runs' pids: %s", exc),
        ):
            self._pids_wanted = None
        if self._dirty and self.run_view.isVisible():
            self._dirty = False
            charted = not self.run_view.plot.isHidden()
            self.run_view.draw(self._history if len(self._history) else None)
            if charted != (not self.run_view.plot.isHidden()):
                self._fit_live()

    def _on_delta(self, path: Path, delta: Delta) -> None:
        if path != self._run_path or self._closed:
            return  # a late answer for a run no longer shown
        if delta.batch is None:
            # Stop following a journal that cannot be read; selecting the run again retries.
            self._stop_following()
            self._run_path = None
            message = f"Cannot read its journal: {delta.error}"
            self.run_view.show_message(f"Run {self._run_name}", message)
            return
        if delta.first:
            self._history = SampleHistory()  # everything from the start follows
        batch = batch_from_rows(delta.batch.samples, delta.batch.run.name)
        if self._history.extend(batch) or not len(self._history) or delta.first:
            self._dirty = True
        name = self._history.run_name or self._run_name
        self.run_view.show_figures(name, self._history.latest)
        self.runSamplesShown.emit()

    def _stop_following(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None


def _banner_style(theme: Theme) -> str:
    return (
        f"QLabel {{ background: {theme.warning_bg}; color: {theme.warning_fg}; "
        "font-weight: bold; border-radius: 4px; padding: 6px; }"
    )
