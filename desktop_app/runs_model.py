"""The runs panel's model: the summaries of every run in a runs directory. Qt-free.

Widgets subscribe with :meth:`RunsModel.add_listener`; listeners are called only when the
list of summaries actually changed, never on a refresh that found nothing new.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from trainer.journal.status import LIVE
from trainer.paths import JOURNAL_NAME
from trainer.runs import RunSummary, summarize, summarize_all

Listener = Callable[[], None]

#: The key whose last value the runs table shows.
LOSS_KEY = "train/loss"


def fetch_runs(runs_dir: Path) -> list[RunSummary]:
    """Summaries of ``runs_dir``'s runs, newest first (unreadable ones last, by name).

    Blocking (opens every journal): call it off the GUI thread. A runs directory that is
    gone raises FileNotFoundError with the fix.
    """
    if not runs_dir.is_dir():
        raise FileNotFoundError(
            f"the runs folder {runs_dir} does not exist (any more): recreate it, or choose "
            "another in File → Settings"
        )
    return sort_runs(summarize_all(runs_dir))


def sort_runs(runs: Sequence[RunSummary]) -> list[RunSummary]:
    """A stable order that does not move rows as runs write: by creation time, newest first."""
    return sorted(runs, key=lambda r: (r.created is None, -(r.created or 0.0), r.name, r.path))


class RunsModel:
    """Holds the current list of :class:`RunSummary` and tells listeners when it changes."""

    def __init__(
        self,
        runs_dir: Path,
        fetch: Callable[[Path], list[RunSummary]] = fetch_runs,
    ) -> None:
        self.runs_dir = runs_dir
        self._fetch = fetch
        self._runs: list[RunSummary] = []
        self._listeners: list[Listener] = []
        #: Run folders opened from elsewhere (the menu, drag and drop), shown with the rest.
        self.extra_folders: list[Path] = []

    def add_folder(self, folder: Path) -> str | None:
        """Show a run folder from outside the runs directory; returns an error message or None."""
        folder = folder.expanduser()
        if not folder.is_dir():
            return f"{folder} is not a folder: open a run folder (one holding {JOURNAL_NAME})"
        if not (folder / JOURNAL_NAME).is_file():
            return f"{folder} is not a run folder: it has no {JOURNAL_NAME}"
        resolved = folder.resolve()
        if resolved.parent != self.runs_dir.resolve() and resolved not in self.extra_folders:
            self.extra_folders.append(resolved)
        return None

    @property
    def runs(self) -> list[RunSummary]:
        """The current summaries (a copy)."""
        return list(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def fetch(self) -> list[RunSummary]:
        """Read the runs directory and the extra folders (blocking; for a worker thread)."""
        found = self._fetch(self.runs_dir)
        extra = [summarize(folder) for folder in list(self.extra_folders)]
        return sort_runs([*found, *extra]) if extra else found

    def refresh(self) -> bool:
        """Fetch and apply in one go (blocking). True if anything changed."""
        return self.set_runs(self.fetch())

    def set_runs(self, runs: Sequence[RunSummary]) -> bool:
        """Replace the summaries; notify listeners and return True only if they differ."""
        new = list(runs)
        if new == self._runs:
            return False
        self._runs = new
        for listener in list(self._listeners):
            listener()
        return True

    def index_of(self, path: str | None) -> int | None:
        """The row of the run at ``path``, or None."""
        for row, run in enumerate(self._runs):
            if run.path == path:
                return row
        return None


def step_text(run: RunSummary) -> str:
    """``"120 / 300"``, or just ``"120"`` when the run has no step budget."""
    if run.status == "unreadable":
        return ""
    return f"{run.step} / {run.max_steps}" if run.max_steps else str(run.step)


def loss_text(run: RunSummary) -> str:
    """The last ``train/loss`` value, formatted, or an empty string."""
    value = run.latest.get(LOSS_KEY)
    if value is None:
        return ""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def elapsed_seconds(run: RunSummary, now: float | None = None) -> float | None:
    if run.created is None:
        return None
    end = (now or time.time()) if run.status in LIVE else (run.updated or run.created)
    return max(0.0, end - run.created)


def duration_text(seconds: float | None) -> str:
    """``"42s"``, ``"3m 05s"``, ``"2h 07m"``; empty for None."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def elapsed_text(run: RunSummary, now: float | None = None) -> str:
    """Time since the run was created (to its last heartbeat, once it has ended)."""
    return duration_text(elapsed_seconds(run, now))


def eta_seconds(run: RunSummary, now: float | None = None) -> float | None:
    """Time left at the average rate so far, for a live run with a step budget."""
    elapsed = elapsed_seconds(run, now)
    if run.status not in LIVE or not run.max_steps or not run.step or not elapsed:
        return None
    return max(0.0, (run.max_steps - run.step) * elapsed / run.step)


def eta_text(run: RunSummary, now: float | None = None) -> str:
    return duration_text(eta_seconds(run, now))
