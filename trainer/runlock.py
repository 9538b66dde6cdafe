"""One writer per run: an exclusive lock on the run folder for an attempt's whole life.

``trainer run``/``resume`` (and ``trainer.init``) take it before anything else in the folder:
an ``flock`` on ``run.lock``, held on a descriptor that is closed on exec (a command run's
child does not hold it). The file says who holds it (pid, host, attempt, since when), so a
second resume fails at once with a message naming the holder. The kernel drops the lock when
its process dies however it dies, so a lock left by a killed attempt is simply taken over (the
log says whose it was). Torch-free and Qt-free.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from trainer import jail
from trainer.errors import TrainDeskError

log = logging.getLogger(__name__)

LOCK_NAME = "run.lock"


class RunBusyError(TrainDeskError):
    """The run folder is locked by another live attempt (or supervisor)."""

    exit_code = 5


def holder(folder: Path) -> dict[str, Any]:
    """What the lock file says about its holder ({} if nothing can be read)."""
    try:
        fd = jail.open_fd(folder, folder / LOCK_NAME, os.O_RDONLY)
    except (OSError, TrainDeskError):
        return {}
    with os.fdopen(fd, "rb") as fh:
        try:
            data = json.loads(fh.read(4096) or b"{}")
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


def describe(info: dict[str, Any]) -> str:
    """``attempt 3 (pid 1234 on host h, since 21:33:02)``, from :func:`holder`'s answer."""
    if not info:
        return "another process"
    who = f"attempt {info['attempt']}" if info.get("attempt") else str(info.get("role", "a run"))
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since", 0))))
    return f"{who} (pid {info.get('pid', '?')} on host {info.get('host', '?')}, since {since})"


class RunLock:
    """The exclusive lock of one run folder, held by this process until :meth:`release`."""

    def __init__(self, folder: Path, fd: int, info: dict[str, Any]) -> None:
        self.folder = folder
        self._fd: int | None = fd
        self.info = info

    @classmethod
    def acquire(cls, folder: Path, *, role: str = "trainer", wait: float = 0.0) -> RunLock:
        """Lock ``folder`` (which must exist) or raise :class:`RunBusyError` naming the holder.

        ``wait``: seconds to keep trying while another holds it (0: fail at once).
        """
        import fcntl

        path = folder / LOCK_NAME
        fd = jail.open_fd(folder, path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RunBusyError(cls._busy_message(folder)) from None
                    time.sleep(0.05)
            previous = _read_fd(fd)
            if previous.get("pid") and previous.get("pid") != os.getpid():
                log.info("run %s: took over the lock left by %s (its process is gone)",
                         folder.name, describe(previous))  # fmt: skip
        except BaseException:
            os.close(fd)
            raise
        info = {"role": role, "pid": os.getpid(), "host": socket.gethostname(),
                "since": time.time(), "attempt": None}  # fmt: skip
        lock = cls(folder, fd, info)
        lock._write()
        return lock

    @staticmethod
    def _busy_message(folder: Path) -> str:
        info: dict[str, Any] = {}
        for _ in range(20):  # the holder writes who it is just after locking
            info = holder(folder)
            if info:
                break
            time.sleep(0.01)
        return (
            f"run {folder.name} is in use by {describe(info)}: one attempt at a time; wait "
            f"for it to end, or stop it with `trainer stop {folder.name}`"
        )

    def set_attempt(self, attempt: int) -> None:
        """Name the attempt that holds the lock (once the journal has numbered it)."""
        self.info["attempt"] = attempt
        self._write()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = json.dumps(self.info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock (idempotent). The file stays: removing it would race with the next taker."""
        if self._fd is None:
            return
        import fcntl

        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_fd(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
