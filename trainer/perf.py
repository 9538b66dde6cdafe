"""Where a step's time goes: data, forward, backward, optimizer, logging.

A :class:`PhaseTimer` sums the seconds spent in named phases over a logging window;
:meth:`PhaseTimer.metrics` turns them into ``perf/<phase>_s`` keys (mean seconds per step),
journaled next to the metrics. Torch-free: on a GPU, pass ``sync=torch.cuda.synchronize`` to
time kernels rather than their launches (it costs a synchronisation per phase).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PHASES = ("data", "forward", "backward", "optimizer", "logging")


class PhaseTimer:
    """Sums of seconds per phase since the last :meth:`reset`."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.sync = sync
        self.totals: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as phase ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync is not None:
                self.sync()
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def take(self, name: str) -> float:
        """Remove and return phase ``name``'s total (to subtract a nested phase)."""
        return self.totals.pop(name, 0.0)

    def metrics(self, steps: int) -> dict[str, float]:
        """``perf/<phase>_s``: mean seconds per step over ``steps`` steps."""
        n = max(1, steps)
        return {f"perf/{name}_s": total / n for name, total in self.totals.items()}

    def reset(self) -> None:
        self.totals.clear()
