"""A command's whole process tree, stopped together: torchrun's workers included.

torchrun starts each worker in a session of its own, so a signal to the trainer's process
group never reaches them, and killing torchrun alone leaves them running. The trainer
therefore remembers every descendant of its command while it runs (they stay known after
torchrun is gone and they are re-parented) and signals them itself: on a stop, the command
first (torchrun passes SIGTERM on to its workers and waits for them), then, if anything is
left when the kill time comes, SIGKILL to every process of the tree.

Two safety nets cover a trainer that is killed outright: the command is started with
``PR_SET_PDEATHSIG`` (Linux), so it gets SIGKILL when the trainer dies, and each rank of a
built-in recipe asks the same of torchrun (:func:`die_with_parent`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable

import psutil

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies (Linux only).

    If the parent is already gone (the race between fork and this call), exit now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(128 + int(sig))


def parent_is_torchrun() -> bool:
    """Whether this process's parent is still a torchrun (not the init process that adopts
    orphans)."""
    try:
        parent = psutil.Process().parent()
        line = " ".join(parent.cmdline()) if parent is not None else ""
    except psutil.Error:
        return False
    return "torch.distributed.run" in line or "torchrun" in line


def child_dies_with_us() -> Callable[[], None] | None:
    """A ``preexec_fn`` for Popen: the child gets SIGKILL if the trainer dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no locks
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return preexec


class ProcessTree:
    """The descendants of ``root`` seen so far (by pid and start time, never a reused pid)."""

    #: Seconds between two looks at the tree by :meth:`refresh_now_and_then` (a look reads
    #: every process's parent: about 10-30 ms).
    EVERY_S = 1.0

    def __init__(self, root: int) -> None:
        self.root = root
        self._known: dict[int, psutil.Process] = {}
        self._looked = 0.0

    def refresh_now_and_then(self) -> None:
        """:meth:`refresh`, at most every :attr:`EVERY_S` seconds."""
        if time.monotonic() - self._looked >= self.EVERY_S:
            self.refresh()

    def refresh(self) -> None:
        """Remember the root's descendants as they are now."""
        self._looked = time.monotonic()
        try:
            children = psutil.Process(self.root).children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            self._known.setdefault(child.pid, child)

    def alive(self) -> list[psutil.Process]:
        """The known descendants still running (zombies count as gone)."""
        out = []
        for proc in self._known.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    def signal(self, sig: int) -> int:
        """Send ``sig`` to every known descendant still running; returns how many."""
        sent = 0
        for proc in self.alive():
            try:
                proc.send_signal(sig)  # psutil checks it is still the same process
                sent += 1
            except psutil.Error:
                continue
        return sent

    def kill(self) -> None:
        self.refresh()
        self.signal(signal.SIGKILL)

    def reap(self, grace: float) -> list[int]:
        """After the root has exited: SIGTERM what it left behind, SIGKILL it after ``grace``
        seconds; returns the pids that had to be stopped."""
        left = self.alive()
        if not left:
            return []
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the processes' state, with a deadline
        self.signal(signal.SIGKILL)
        psutil.wait_procs(left, timeout=5)
        return [p.pid for p in left]
