"""Sampling the GPUs and the host about once a second on a worker thread. Qt-free.

The worker initialises the backend (``nvmlInit`` can take seconds), reads it at most once per
``interval_s`` (never faster than :data:`MIN_INTERVAL_S`: NVML calls are slow and polling them
hard slows the GPUs) and shuts the backend down when stopped. Every reading, even a failed
one, becomes a :class:`SystemSnapshot` handed to ``on_snapshot`` on the worker thread; the
sampler logs failures and never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import psutil

from desktop_app.system.host import HostProbe, HostReading
from trainer.resources.gpus import GpuBackend, GpuReading

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 1.0
#: The pause between two readings when one reading took longer than the interval.
MIN_GAP_S = 0.2
THREAD_NAME = "traindesk-system"

T = TypeVar("T")


@dataclass(frozen=True)
class SystemSnapshot:
    """What the sampler read at ``wall`` (unix seconds)."""

    wall: float
    backend: str
    simulated: bool
    gpus: list[GpuReading]
    host: HostReading
    unavailable_reason: str | None = None
    #: pid -> run name, for the GPU processes that belong to one of our runs.
    owners: dict[int, str] = field(default_factory=dict)
    #: Set when the reading failed unexpectedly (the figures are then "n/a").
    error: str | None = None


class SystemSampler:
    """Reads ``backend`` and the host on its own thread until :meth:`stop`."""

    def __init__(
        self,
        backend: GpuBackend,
        on_snapshot: Callable[[SystemSnapshot], None],
        *,
        interval_s: float = MIN_INTERVAL_S,
        host_probe: Callable[[], HostProbe] = HostProbe,
    ) -> None:
        self.backend = backend
        self.interval_s = max(float(interval_s), MIN_INTERVAL_S)
        self._on_snapshot = on_snapshot
        self._host_probe = host_probe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_pids: dict[int, str] = {}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is not None:
            return
        # A daemon: stop() joins it, but an NVML call can hang in the driver, and the app must
        # exit all the same (stop() then gives up after its timeout and says so).
        self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the worker to finish after its current reading, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the worker to finish and wait up to ``timeout`` s; True once it has ended.

        The worker shuts the backend down itself, on the thread that started it.
        """
        self._stop.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the system sampler is still inside a GPU call; leaving it to finish")
            return False
        return True

    def set_interval(self, interval_s: float) -> None:
        """Read every ``interval_s`` seconds from the next reading on (1 s at the fastest)."""
        self.interval_s = max(float(interval_s), MIN_INTERVAL_S)

    def set_run_pids(self, pids: Mapping[int, str]) -> None:
        """The pids of our runs (pid -> run name), to tell which GPU processes are ours."""
        self._run_pids = dict(pids)  # replaced whole: the worker reads one consistent dict

    # ------------------------------------------------------------------ worker
    def _loop(self) -> None:
        host = self._guarded(self._host_probe, "start the host probe")
        self._guarded(self.backend.init, "start the GPU backend")
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                snapshot = self.sample(host)
                if self._stop.is_set():
                    break
                self._guarded(partial(self._on_snapshot, snapshot), "deliver a snapshot")
                spent = time.monotonic() - started
                self._stop.wait(max(self.interval_s - spent, MIN_GAP_S))
        finally:
            self._guarded(self.backend.shutdown, "shut the GPU backend down")

    def sample(self, host: HostProbe | None) -> SystemSnapshot:
        """One reading of the backend and the host; never raises."""
        error: str | None = None
        try:
            gpus = self.backend.devices()
        except Exception as exc:
            log.warning("reading the GPUs failed: %s", exc, exc_info=True)
            gpus, error = [], f"reading the GPUs failed: {exc}"
        reading = HostReading()
        if host is not None:
            reading = self._guarded(host.read, "read the host") or HostReading()
        reason = getattr(self.backend, "unavailable_reason", None)
        return SystemSnapshot(
            wall=time.time(),
            backend=str(getattr(self.backend, "label", "?")),
            simulated=bool(getattr(self.backend, "simulated", False)),
            gpus=gpus,
            host=reading,
            unavailable_reason=reason if isinstance(reason, str) else None,
            owners=self._guarded(lambda: find_owners(gpus, self._run_pids), "match pids") or {},
            error=error,
        )

    @staticmethod
    def _guarded(call: Callable[[], T], what: str) -> T | None:
        try:
            return call()
        except Exception as exc:
            log.warning("system sampler: cannot %s: %s", what, exc, exc_info=True)
            return None


def find_owners(gpus: Iterable[GpuReading], run_pids: Mapping[int, str]) -> dict[int, str]:
    """pid -> run name for GPU processes that are one of ``run_pids`` or descend from one.

    DataLoader workers and ranks started by a run hold GPU memory under their own pids.
    """
    owners: dict[int, str] = {}
    if not run_pids:
        return owners
    for gpu in gpus:
        for pid, _used in gpu.processes or ():
            if pid in owners:
                continue
            if pid in run_pids:
                owners[pid] = run_pids[pid]
                continue
            try:
                ancestors = [p.pid for p in psutil.Process(pid).parents()]
            except psutil.Error:  # gone, not ours to see, or a host pid inside a container
                continue
            for ancestor in ancestors:
                if ancestor in run_pids:
                    owners[pid] = run_pids[ancestor]
                    break
    return owners
