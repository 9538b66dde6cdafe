"""Fixtures for the desktop app's tests: real run folders in a temporary runs dir, leak checks.

Qt runs offscreen; the variable must be set before anything imports Qt.
"""

from __future__ import annotations

import asyncio
import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest
import qasync
from PySide6.QtWidgets import QApplication

from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

MakeRun = Callable[..., JournalWriter]

_OUR_THREADS = ("traindesk-io", "traindesk-tasks", "journal-writer", "traindesk-system")


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The GPU lease store and the app's log folder (the user state dir) live in tmp_path:
    a test never reads or writes the user's own."""
    monkeypatch.setenv("TRAINDESK_LEASES", str(tmp_path / "state" / "leases.sqlite"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("TRAINDESK_LOG_LEVEL", raising=False)
    return tmp_path / "state"


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs directory; $TRAINDESK_HOME points there too, so nothing escapes tmp_path."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("TRAINDESK_HOME", str(folder))
    return folder


@pytest.fixture
def make_run(runs_dir: Path) -> Iterator[MakeRun]:
    """Make a real run folder with the real JournalWriter; open writers close at teardown.

    ``make_run(name, losses=[...], status="finished", max_steps=100, keep_open=False)``
    logs ``train/loss`` at steps 0, 1, ... and returns the writer (closed unless
    ``keep_open``; an open writer heartbeats once, so the run reads as "running").
    """
    writers: list[JournalWriter] = []

    def make(
        name: str,
        *,
        losses: Sequence[float] = (),
        status: str = "finished",
        max_steps: int | None = 100,
        keep_open: bool = False,
    ) -> JournalWriter:
        paths = RunPaths(runs_dir / name).create()
        writer = JournalWriter.create(
            paths.journal,
            run_id=f"id-{name}",
            name=name,
            entry="spirals",
            kind="recipe",
            config={"lr": 0.01},
            max_steps=max_steps,
        )
        writers.append(writer)
        writer.set_status("running")
        for step, loss in enumerate(losses):
            writer.log_scalars({"train/loss": loss}, step)
        last = max(len(losses) - 1, 0)
        if keep_open:
            writer.heartbeat(last)
            writer.flush()
        else:
            writer.set_status(status, exit_reason=status, step=last)
            writer.close()
        return writer

    yield make
    for writer in writers:
        writer.close()


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves child processes or our worker threads behind."""
    yield
    # Qt objects a test left in reference cycles are collected here, on the GUI thread. Left
    # to chance, a collection can start on a worker thread of a later test and destroy them
    # there: Qt then waits for the GUI thread, which waits for the GIL (a hang, or a crash).
    gc.collect()
    children = psutil.Process().children(recursive=True)
    for child in children:
        child.kill()
    assert not children, f"leaked processes: {children}"
    leaked = [
        t.name for t in threading.enumerate() if t.name.startswith(_OUR_THREADS) and t.is_alive()
    ]
    assert not leaked, f"leaked threads: {leaked}"


def _log_losses(writer: JournalWriter, start: int, losses: Sequence[float]) -> None:
    for offset, loss in enumerate(losses):
        writer.log_scalars({"train/loss": loss}, start + offset)
    writer.heartbeat(start + len(losses) - 1)
    writer.flush()


@pytest.fixture
def log_losses() -> Callable[[JournalWriter, int, Sequence[float]], None]:
    """``log_losses(writer, start, losses)``: log more points from step ``start``, commit."""
    return _log_losses


@pytest.fixture
def aloop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop for coroutines; errors it reports fail the test."""
    qapp.setQuitOnLastWindowClosed(False)  # as the app does: closing a dialog must not quit
    loop = qasync.QEventLoop(qapp)
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    yield loop
    loop.close()
    qapp.setQuitOnLastWindowClosed(True)
    assert not errors, errors
