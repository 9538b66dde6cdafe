"""The names of a run's lifecycle states, as the journal stores them in ``run.status``.

They live here, at the bottom, so that the journal (``status.derive_status``) and everything
above it share one spelling. The legal moves between them are the supervision layer's
(``trainer.supervision.lifecycle``).
"""

from __future__ import annotations

QUEUED, STARTING, RUNNING, PAUSED, STOPPING = "queued", "starting", "running", "paused", "stopping"
FINISHED, STOPPED, FAILED, CRASHED = "finished", "stopped", "failed", "crashed"

LIVE = frozenset({QUEUED, STARTING, RUNNING, PAUSED, STOPPING})
TERMINAL = frozenset({FINISHED, STOPPED, FAILED, CRASHED})
STATES = LIVE | TERMINAL
