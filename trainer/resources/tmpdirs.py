"""A private TMPDIR per run process, removed when it ends; stale ones cleaned at start-up.

Runs never collide on a temporary file: each trainer process gets
``<system temp>/traindesk-<uid>/<run id>-<pid>/`` as ``TMPDIR`` (and ``tempfile.tempdir``),
inherited by its DataLoader workers and subprocesses. One left by a killed process is removed
by the next trainer that starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trainer import settings
from trainer.journal.status import process_alive

log = logging.getLogger(__name__)


#: The system's temp dir, read before any run's TMPDIR is set in this process.
_SYSTEM_TMP = tempfile.gettempdir()


def base_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(_SYSTEM_TMP) / f"traindesk-{uid}"


def clean_stale(base: Path | None = None) -> list[Path]:
    """Remove the TMPDIRs of run processes that are gone; returns what was removed."""
    base = base if base is not None else base_dir()
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        _, _, pid_text = entry.name.rpartition("-")
        if not pid_text.isdigit() or process_alive(int(pid_text), None):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
        log.info("removed the stale run TMPDIR %s", entry)
    return removed


@contextlib.contextmanager
def run_tmpdir(run_id: str) -> Iterator[Path]:
    """Make this process's TMPDIR for the run, set it, and remove it afterwards."""
    clean_stale()
    saved_env, saved_tempdir = settings.TMPDIR.raw(), tempfile.tempdir
    path = base_dir() / f"{run_id}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    os.environ["TMPDIR"] = str(path)
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        if any(path.glob("pymp-*")):
            # multiprocessing removes its own folder in here at exit: remove ours after it.
            import multiprocessing.util

            multiprocessing.util.Finalize(
                None, shutil.rmtree, args=(str(path), True), exitpriority=-101
            )
        else:
            shutil.rmtree(path, ignore_errors=True)
