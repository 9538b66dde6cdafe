"""One colour per run, the same in the runs table, the charts, their legend and exports. Qt-free.

A run's colour follows its place in creation order among the listed runs (oldest first), so a
new run takes the next colour and leaves every other run's colour as it was; the same runs
directory gives the same colours at every start. :data:`PALETTE` holds 24 saturated colours of
middle lightness, readable on light and on dark backgrounds; run 25 starts the cycle again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

#: Colours in the order runs take them: neighbours in a sweep get clearly different hues, and
#: the first dozen (a sweep's worth) are all far apart (no second orange or blue among them).
PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7048e8", "#20c997", "#c2255c", "#ae3ec9", "#4c6ef5", "#74b816", "#a0522d",
    "#5c940d", "#e8590c", "#1098ad", "#0ca678", "#f08c00", "#f03e3e", "#3b5bdb", "#d6336c",
)  # fmt: skip


class Listed(Protocol):
    """What colouring needs of a run (a :class:`~trainer.runs.RunSummary` has it)."""

    @property
    def path(self) -> str: ...
    @property
    def created(self) -> float | None: ...


def fallback_colour(path: str) -> str:
    """A colour for a run not (yet) listed: stable, from a hash of its folder path."""
    digest = hashlib.sha1(path.encode(), usedforsecurity=False).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def assign(runs: Iterable[Listed]) -> dict[str, str]:
    """Run folder path -> ``#rrggbb``, by creation order (oldest first; undated runs last)."""
    ordered = sorted(runs, key=lambda r: (r.created is None, r.created or 0.0, r.path))
    return {run.path: PALETTE[n % len(PALETTE)] for n, run in enumerate(ordered)}


class RunColours:
    """The colours of the listed runs, kept up to date with :meth:`update`."""

    def __init__(self) -> None:
        self._colours: dict[str, str] = {}

    def update(self, runs: Iterable[Listed]) -> bool:
        """Recolour for this listing; True if any listed run's colour changed."""
        new = assign(runs)
        changed = new != self._colours
        self._colours = new
        return changed

    def colour(self, path: str) -> str:
        """The run's ``#rrggbb`` (a stable hash colour for a run not in the listing)."""
        return self._colours.get(path) or fallback_colour(path)

    def __contains__(self, path: object) -> bool:
        return path in self._colours
