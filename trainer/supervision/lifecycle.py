"""The run lifecycle: its states, the legal transitions between them, and a guard for them.

::

    queued ─► starting ─► running ◄─► paused
                 │           │          │
                 └───────────┴─► stopping ─► finished | stopped | failed | crashed
    (any live state may also end directly; an ended run may start again: resume, restart)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

# The state names are the journal's (the bottom layer); the moves between them are ours.
from trainer.journal.states import (
    CRASHED,
    FAILED,
    FINISHED,
    LIVE,
    PAUSED,
    QUEUED,
    RUNNING,
    STARTING,
    STATES,
    STOPPED,
    STOPPING,
    TERMINAL,
)

__all__ = [
    "CRASHED", "FAILED", "FINISHED", "LIVE", "PAUSED", "QUEUED", "RUNNING", "STARTING",
    "STATES", "STOPPED", "STOPPING", "TERMINAL", "TRANSITIONS", "Lifecycle", "Transition",
]  # fmt: skip

log = logging.getLogger(__name__)

_ENDS = TERMINAL
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({STARTING, STOPPING, STOPPED}),  # a queued run cancelled: stopped
    STARTING: frozenset({RUNNING, STOPPING, QUEUED}) | _ENDS,  # queued: waiting for GPUs
    RUNNING: frozenset({PAUSED, STOPPING}) | _ENDS,
    PAUSED: frozenset({RUNNING, STOPPING, STARTING}) | _ENDS,  # starting: after a full disk
    STOPPING: _ENDS,
    # An ended run starts again as a new attempt (a restart by policy, or a user's resume);
    # a run waiting for a restart or for disk space shows as paused.
    FINISHED: frozenset({STARTING, QUEUED}),
    STOPPED: frozenset({STARTING, QUEUED}),
    FAILED: frozenset({STARTING, QUEUED, PAUSED}),
    CRASHED: frozenset({STARTING, QUEUED, PAUSED}),
}


@dataclass(frozen=True)
class Transition:
    """One accepted change of state."""

    old: str
    new: str
    reason: str
    wall: float


class Lifecycle:
    """A run's state, changed only along :data:`TRANSITIONS`.

    ``on_change`` is called with each accepted transition (the drivers journal it as an
    event). An illegal transition is rejected: logged at WARNING, state unchanged.
    """

    def __init__(
        self,
        state: str = QUEUED,
        *,
        name: str = "",
        on_change: Callable[[Transition], None] | None = None,
    ) -> None:
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        self.state = state
        self.name = name
        self.on_change = on_change
        self.history: list[Transition] = []
        self.rejected: list[tuple[str, str, str]] = []

    def can(self, new: str) -> bool:
        """True if moving to ``new`` is legal now."""
        return new in TRANSITIONS.get(self.state, frozenset())

    def to(self, new: str, reason: str = "") -> bool:
        """Move to ``new``; False (and nothing happens) if already there or if illegal."""
        if new == self.state:
            return False
        if new not in STATES or not self.can(new):
            self.rejected.append((self.state, new, reason))
            log.warning(
                "run %s: illegal transition %s -> %s rejected%s",
                self.name, self.state, new, f" ({reason})" if reason else "",
            )  # fmt: skip
            return False
        change = Transition(self.state, new, reason, time.time())
        self.state = new
        self.history.append(change)
        if self.on_change is not None:
            self.on_change(change)
        return True

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL
