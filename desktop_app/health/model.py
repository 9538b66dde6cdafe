"""Health figures of runs and of the app itself. Qt-free.

Per run, from its journal's :class:`~trainer.journal.reader.RunInfo` and new events (read on
the app's journal worker by :class:`HealthReaders`), :class:`HealthModel` works out:

* the status as derived from the process and its heartbeat (``unresponsive``, ``stalled``,
  ``crashed``), with this app's own heartbeat timeout;
* the heartbeat's age;
* the step rate: steps per second over the last :attr:`HealthModel.window_s` seconds, and its
  history over the last few minutes (for a sparkline);
* the journal lag: how far the newest committed step is ahead of the newest point the charts
  drew (None when the run is not charted);
* restarts: the app's supervisor's count when it supervises the run, else ``attempt - 1``;
* the last error: the newest ``error``, ``failed``, ``crashed`` or ``exit`` event;
* for a run on several processes (torchrun), its ranks from ``ranks.json`` (read with the
  journal, on the same worker): each rank's node, host, device, pid, step and the age of its
  last beat, and the elastic restart count.

The app's own figures (:class:`AppHealth`) are event-loop lag, chart redraw time, memory and
open journals. Listeners hear only of changes.

Why over 400 lines: the figures of runs and of the app (status, heartbeat age, step rate and its
history, journal lag, restarts, errors) share one update cycle and are tested without Qt.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from desktop_app.health.ranks import Ranks, read_ranks
from trainer.errors import JournalError
from trainer.journal.reader import EventRow, JournalReader, RunInfo
from trainer.journal.status import (
    ALIVE,
    HEARTBEAT_TIMEOUT,
    STALL_FACTOR,
    STALL_MIN,
    derive_status,
)
from trainer.paths import JOURNAL_NAME

Listener = Callable[[], None]
#: Derives a run's status from its journal at a time (it looks at the process: off the GUI
#: thread).
Derive = Callable[[RunInfo, float], str]

#: Event kinds whose message is a run's "last error".
ERROR_KINDS = frozenset({"error", "failed", "crashed", "exit"})
#: Events shown in the same column although the run goes on: logging throttles training
#: (the journal writer's buffer was full, so log() waited; nothing was dropped).
WARNING_KINDS = frozenset({"throttled"})
#: The step rate is measured over this many seconds.
RATE_WINDOW_S = 30.0
#: How much rate history the sparklines keep.
HISTORY_S = 300.0
ACTIVE = ALIVE


@dataclass(frozen=True)
class RunSample:
    """One reading of a run's journal: its run row and heartbeat, its derived status, and
    the events new since the last reading (all of them on the first)."""

    folder: str
    info: RunInfo
    status: str
    events: tuple[EventRow, ...]
    wall: float  # unix time of the reading
    ranks: Ranks | None = None  # None: no ranks.json (a run on one process)


@dataclass(frozen=True)
class RunHealth:
    """What the health panel shows of one run."""

    folder: str
    name: str
    status: str
    step: int
    heartbeat_age: float | None  # seconds; None: no heartbeat, or the run has ended
    step_rate: float | None  # steps/s over the window; None: not enough readings, or ended
    journal_lag: float | None  # seconds; None: not charted (or nothing drawn yet)
    restarts: int
    last_error: str
    rate_history: tuple[tuple[float, float], ...] = ()  # (unix time, steps/s)
    ranks: Ranks | None = None  # a run on several processes: its ranks, as last read
    #: Seconds since each rank's last beat, in the order of ``ranks.ranks``; empty once the
    #: run has ended (its ranks' beats are history then).
    rank_ages: tuple[float | None, ...] = ()

    @property
    def live(self) -> bool:
        return self.status in ACTIVE


@dataclass
class _Track:
    name: str
    info: RunInfo | None = None
    status: str = ""
    wall: float = 0.0
    steps: deque[tuple[float, int, int]] = field(default_factory=deque)  # (wall, step, attempt)
    rates: deque[tuple[float, float]] = field(default_factory=deque)
    last_error: str = ""
    restarts: int | None = None
    drawn_wall: float | None = None
    error: str = ""  # the journal could not be read
    ranks: Ranks | None = None


class HealthModel:
    """The health of a set of runs, updated from :class:`RunSample` readings."""

    def __init__(
        self,
        *,
        window_s: float = RATE_WINDOW_S,
        history_s: float = HISTORY_S,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        stall_factor: float = STALL_FACTOR,
        stall_min: float = STALL_MIN,
    ) -> None:
        self.window_s = window_s
        self.history_s = history_s
        self.heartbeat_timeout = heartbeat_timeout
        self.stall_factor = stall_factor
        self.stall_min = stall_min
        self._tracks: dict[str, _Track] = {}
        self._rows: list[RunHealth] = []
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ queries
    @property
    def rows(self) -> list[RunHealth]:
        """One row per followed run, in the order :meth:`set_runs` gave."""
        return list(self._rows)

    @property
    def folders(self) -> list[str]:
        return list(self._tracks)

    def row(self, folder: str | Path) -> RunHealth | None:
        return next((r for r in self._rows if r.folder == str(folder)), None)

    # ------------------------------------------------------------------ updates
    def set_runs(self, runs: Iterable[tuple[str, str]]) -> bool:
        """Follow exactly these runs ((folder, name), in display order)."""
        wanted = {str(folder): name for folder, name in runs}
        if list(wanted) == list(self._tracks):
            return False
        self._tracks = {f: self._tracks.get(f) or _Track(name) for f, name in wanted.items()}
        return self._recompute()

    def apply(
        self,
        samples: Sequence[RunSample],
        *,
        errors: dict[str, str] | None = None,
        restarts: dict[str, int] | None = None,
        drawn: dict[str, float] | None = None,
    ) -> bool:
        """Take in one round of readings; ``errors``: folder -> why its journal could not be
        read; ``restarts``: the supervisor's counts; ``drawn``: the newest wall time the
        charts drew per folder. True (and listeners told) if anything shown changed."""
        restarts = restarts or {}
        drawn = drawn or {}
        for sample in samples:
            track = self._tracks.get(sample.folder)
            if track is not None:
                self._take(track, sample)
        for folder, message in (errors or {}).items():
            if folder in self._tracks:
                self._tracks[folder].error = message
        for folder, track in self._tracks.items():
            track.restarts = restarts.get(folder)
            track.drawn_wall = drawn.get(folder)
        return self._recompute()

    def derive(self, info: RunInfo, now: float) -> str:
        """The status to show, with this model's timeouts (looks at the process: call it
        where :class:`HealthReaders` reads, off the GUI thread)."""
        return derive_status(
            info,
            now=now,
            heartbeat_timeout=self.heartbeat_timeout,
            stall_factor=self.stall_factor,
            stall_min=self.stall_min,
        )

    # ------------------------------------------------------------------ internals
    def _take(self, track: _Track, sample: RunSample) -> None:
        info = sample.info
        track.info, track.status, track.wall, track.error = info, sample.status, sample.wall, ""
        track.ranks = sample.ranks
        track.name = info.name or track.name
        step = max(info.step, info.heartbeat_step or 0)
        if track.steps and (step < track.steps[-1][1] or info.attempt != track.steps[-1][2]):
            track.steps.clear()  # a new attempt (it may restart from an earlier step)
        track.steps.append((sample.wall, step, info.attempt))
        while len(track.steps) > 2 and sample.wall - track.steps[1][0] >= self.window_s:
            track.steps.popleft()
        rate = _rate(track.steps)
        if rate is not None and sample.status in ACTIVE and sample.status != "queued":
            track.rates.append((sample.wall, rate))
        while track.rates and sample.wall - track.rates[0][0] > self.history_s:
            track.rates.popleft()
        for event in sample.events:
            if event.kind in ERROR_KINDS or event.kind in WARNING_KINDS:
                track.last_error = f"{event.kind}: {event.message}" if event.message else event.kind

    def _health(self, folder: str, track: _Track) -> RunHealth:
        info = track.info
        if info is None:
            status = "unreadable" if track.error else "…"
            return RunHealth(folder, track.name, status, 0, None, None, None, 0, track.error)
        status = track.status
        live = status in ACTIVE and status != "queued"
        age = None
        if live and info.heartbeat_wall is not None:
            age = max(0.0, track.wall - info.heartbeat_wall)
        lag = None
        if track.drawn_wall is not None and info.last_step_wall is not None:
            lag = max(0.0, info.last_step_wall - track.drawn_wall)
        restarts = track.restarts if track.restarts is not None else max(0, info.attempt - 1)
        last_error = track.error or track.last_error
        if not last_error and status == "crashed":
            last_error = "crashed: the process is gone (killed, or the machine went down)"
        ranks = track.ranks
        ages = tuple(b.age(track.wall) for b in ranks.ranks) if ranks and live else ()
        return RunHealth(
            folder,
            track.name,
            status,
            max(info.step, info.heartbeat_step or 0),
            age,
            _rate(track.steps) if live else None,
            lag,
            restarts,
            last_error,
            tuple(track.rates),
            ranks,
            ages,
        )

    def _recompute(self) -> bool:
        rows = [self._health(folder, track) for folder, track in self._tracks.items()]
        if rows == self._rows:
            return False
        self._rows = rows
        for listener in list(self._listeners):
            listener()
        return True


#: At most this many ended runs are followed for being recent (a sweep that just ended may
#: have changed a thousand journals in the last minutes).
RECENT_MAX = 8


def folders_to_watch(
    runs: Iterable[tuple[str, str, str, float | None]],
    selected: Sequence[str],
    *,
    now: float | None = None,
    recent_s: float = 300.0,
    recent_max: int = RECENT_MAX,
) -> list[tuple[str, str]]:
    """The runs the health panel follows, from (folder, name, status, updated) tuples: the
    live ones, the selected ones, and the ``recent_max`` newest of those whose journal changed
    in the last ``recent_s`` seconds (a run that just crashed stays in view); in the order
    given."""
    now = time.time() if now is None else now
    runs = list(runs)
    recent = sorted(
        ((updated, folder) for folder, _name, status, updated in runs
         if updated is not None and now - updated <= recent_s and status not in ACTIVE),
        reverse=True,
    )[:recent_max]  # fmt: skip
    keep = {folder for _updated, folder in recent}
    return [
        (folder, name)
        for folder, name, status, _updated in runs
        if status in ACTIVE or folder in selected or folder in keep
    ]


def _rate(steps: deque[tuple[float, int, int]]) -> float | None:
    if len(steps) < 2:
        return None
    (t0, s0, _), (t1, s1, _) = steps[0], steps[-1]
    if t1 - t0 <= 1e-3:
        return None
    return max(0.0, (s1 - s0) / (t1 - t0))


class HealthReaders:
    """One :class:`JournalReader` per followed run, with the id of the last event seen.

    Use it from one thread (the app's journal worker); :meth:`read` opens what is new and
    closes readers of runs no longer asked for.
    """

    def __init__(self) -> None:
        self._readers: dict[str, JournalReader] = {}
        self._last_event: dict[str, int] = {}

    def read(
        self, folders: Sequence[str], derive: Derive | None = None
    ) -> tuple[list[RunSample], dict[str, str]]:
        """A reading of each of ``folders``, its status derived by ``derive`` (default:
        the trainer's rules); the second item: folder -> error."""
        derive = derive or (lambda info, now: derive_status(info, now=now))
        for folder in [f for f in self._readers if f not in folders]:
            self._drop(folder)
        samples: list[RunSample] = []
        errors: dict[str, str] = {}
        for folder in folders:
            try:
                reader = self._readers.get(folder)
                if reader is None:
                    reader = self._readers[folder] = JournalReader(Path(folder))
                info = reader.run_info()
                events = reader.events(self._last_event.get(folder, 0))
            except JournalError as exc:
                self._drop(folder)
                errors[folder] = str(exc)
                continue
            if events:
                self._last_event[folder] = events[-1].id
            ranks = read_ranks(folder)
            now = time.time()
            samples.append(RunSample(folder, info, derive(info, now), tuple(events), now, ranks))
        return samples, errors

    @property
    def open_count(self) -> int:
        return len(self._readers)

    def close(self) -> None:
        for folder in list(self._readers):
            self._drop(folder)

    def _drop(self, folder: str) -> None:
        reader = self._readers.pop(folder, None)
        self._last_event.pop(folder, None)
        if reader is not None:
            reader.close()


# ---------------------------------------------------------------------- the app itself
@dataclass(frozen=True)
class AppHealth:
    """The app's own figures; None: not measured yet."""

    loop_lag_ms: float | None = None  # the newest sample
    loop_lag_max_ms: float | None = None  # the worst over the recent samples
    redraw_ms: float | None = None  # the charts' last redraw that drew something
    redraw_max_ms: float | None = None
    rss: int | None = None  # bytes
    open_journals: int | None = None


@dataclass(frozen=True)
class ProcessFigures:
    """What :func:`read_process` measures (off the GUI thread)."""

    rss: int | None
    open_journals: int | None


def read_process(process: psutil.Process | None = None) -> ProcessFigures:
    """The app process's resident memory and how many run journals it holds open (each
    journal reader, in any part of the app, holds its journal open; two readers of one
    journal count once). Never raises."""
    proc = process or psutil.Process()
    try:
        rss: int | None = proc.memory_info().rss
    except psutil.Error:
        rss = None
    try:
        open_files = proc.open_files()
        journals: int | None = len(
            {f.path for f in open_files if Path(f.path).name == JOURNAL_NAME}
        )
    except psutil.Error:
        journals = None
    return ProcessFigures(rss, journals)


def summarize_ms(samples: Iterable[float]) -> tuple[float | None, float | None]:
    """(the newest, the largest) of ``samples``; (None, None) when there are none."""
    values = list(samples)
    if not values:
        return None, None
    return values[-1], max(values)
