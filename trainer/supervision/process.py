"""The trainer's command line and process-group signalling, shared by both supervisors."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path


def trainer_command(*args: str) -> list[str]:
    """``[python, -m, trainer, *args]``, or ``[bundle, trainer, *args]`` when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "trainer", *args]
    return [sys.executable, "-m", "trainer", *args]


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process group ``pgid`` (a child started in a new session has
    pgid == pid): the trainer, its DataLoader workers, torchrun's ranks. False if gone."""
    if sys.platform == "win32":
        with contextlib.suppress(OSError):
            os.kill(pgid, signal.SIGTERM if sig != signal.SIGKILL else signal.SIGKILL)
            return True
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def remove_half_made(folder: Path) -> None:
    """Remove a run folder its first attempt left before writing a journal (no data in it),
    so that the attempt can be started afresh under the same name."""
    from trainer.paths import JOURNAL_NAME

    if not folder.is_dir() or (folder / JOURNAL_NAME).exists():
        return
    if any((folder / "checkpoints").glob("*")):
        return
    shutil.rmtree(folder, ignore_errors=True)
