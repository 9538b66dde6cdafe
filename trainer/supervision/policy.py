"""Restart and health policy: how often to restart, how long to wait, when a run is hung."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """When and how fast a crashed or failed run is restarted from its last checkpoint.

    The n-th consecutive restart waits ``backoff_initial * backoff_factor**(n-1)`` seconds,
    at most ``backoff_max``, spread by ±``jitter`` (a fraction) so that runs that crashed
    together do not all restart together. An attempt that ran ``healthy_after`` seconds
    resets the count: a run that crashes once a day restarts forever, one that crashes at
    start-up gives up after ``max_restarts``.
    """

    max_restarts: int = 3
    backoff_initial: float = 2.0
    backoff_factor: float = 2.0
    backoff_max: float = 300.0
    jitter: float = 0.2
    healthy_after: float = 600.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be 0 or more")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("backoff times must be 0 or more")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be 1 or more")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def base_delay(self, restart: int) -> float:
        """The delay before restart number ``restart`` (1-based), without jitter."""
        return min(self.backoff_max, self.backoff_initial * self.backoff_factor ** (restart - 1))

    def delay(self, restart: int, rng: random.Random) -> float:
        """The delay before restart number ``restart``, with jitter."""
        base = self.base_delay(restart)
        return max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1)))


@dataclass(frozen=True)
class HealthPolicy:
    """When a live run counts as unresponsive, when it is killed, and when it is stalled.

    No heartbeat for ``heartbeat_timeout`` seconds: "unresponsive". Still none
    ``kill_grace`` seconds later: the process group is killed and the attempt counts as
    crashed (hung). A child that has not written its first heartbeat after
    ``startup_timeout`` seconds (imports, data loading) is hung too. No step progress for
    ``stall_factor`` times the median step time (and at least ``stall_min`` seconds):
    "stalled", shown but not killed.
    """

    heartbeat_timeout: float = 10.0
    kill_grace: float = 20.0
    startup_timeout: float = 300.0
    stall_factor: float = 10.0
    stall_min: float = 60.0


class RestartTracker:
    """Counts consecutive restarts and decides the next delay."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng if rng is not None else random.Random()
        #: Consecutive restarts since the last healthy attempt.
        self.consecutive = 0
        #: Restarts performed in all.
        self.total = 0

    def next_delay(self, ran_for: float) -> float | None:
        """The delay before the next restart, or None when the restarts are used up.

        ``ran_for``: how long the attempt that just ended ran (seconds).
        """
        if ran_for >= self.policy.healthy_after:
            self.consecutive = 0
        if self.consecutive >= self.policy.max_restarts:
            return None
        self.consecutive += 1
        self.total += 1
        return self.policy.delay(self.consecutive, self.rng)
