"""Records what a :class:`Supervisor` emits, for the supervisor and chaos tests."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QCoreApplication, QEvent
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.supervisor import Supervisor


@dataclass
class Recorder:
    """Everything a supervisor emitted."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    finished: dict[str, tuple[int, bool]] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    restarting: list[tuple[str, float, str]] = field(default_factory=list)
    ended: list[tuple[str, str, str]] = field(default_factory=list)
    #: ``(folder, health, message, monotonic time)``
    health: list[tuple[str, str, str, float]] = field(default_factory=list)
    #: monotonic time of each ``finished``, by folder (the last one)
    finished_at: dict[str, float] = field(default_factory=dict)

    def text(self, folder: str, stream: str | None = None) -> str:
        return "\n".join(ln for f, ln, s in self.lines if f == folder and stream in (None, s))


def record(supervisor: Supervisor) -> Recorder:
    """A recorder of everything ``supervisor`` emits."""
    rec = Recorder()

    def on_finished(folder: str, code: int, crashed: bool) -> None:
        rec.finished[folder] = (code, crashed)
        rec.finished_at[folder] = time.monotonic()

    supervisor.output.connect(lambda f, line, s: rec.lines.append((f, line, s)))
    supervisor.started.connect(rec.started.append)
    supervisor.finished.connect(on_finished)
    supervisor.failed_to_start.connect(lambda n, m: rec.failed.append((n, m)))
    supervisor.restarting.connect(lambda f, d, m: rec.restarting.append((f, d, m)))
    supervisor.ended.connect(lambda f, st, m: rec.ended.append((f, st, m)))
    supervisor.health_changed.connect(
        lambda f, h, m: rec.health.append((f, h, m, time.monotonic()))
    )
    return rec


def end_supervision(qtbot: QtBot, supervisor: Supervisor) -> None:
    """Kill what is left without a restart, wait until it has ended, and delete the
    supervisor here, on the GUI thread (its signal connections make reference cycles: left
    to the garbage collector, it could be deleted on a worker thread during a later test)."""
    supervisor.kill_all()
    qtbot.waitUntil(lambda: not supervisor.running(), timeout=10_000)
    assert not supervisor.pending()
    supervisor.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
