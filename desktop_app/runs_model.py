"""The runs panel's model: the summaries of every run in a runs directory. Qt-free.

Widgets subscribe with :meth:`RunsModel.add_listener`; listeners are called only when the
list of summaries actually changed, never on a refresh that found nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from trainer.runs import RunSummary, summarize_all

Listener = Callable[[], None]

#: The key whose last value the runs table shows.
LOSS_KEY = "train/loss"


def fetch_runs(runs_dir: Path) -> list[RunSummary]:
    """Summaries of ``runs_dir``'s runs, newest first (unreadable ones last, by name).

    Blocking (opens every journal): call it off the GUI thread.
    """
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
        """Read the runs directory (blocking; safe to call from a worker thread)."""
        return self._fetch(self.runs_dir)

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
