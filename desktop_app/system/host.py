"""The host's CPU load and RAM through psutil. Qt-free; no method raises."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import psutil

log = logging.getLogger(__name__)

#: A CPU % measured over less than this after priming is noise: it reads as "n/a".
MIN_CPU_WINDOW_S = 0.1


@dataclass(frozen=True)
class HostReading:
    """System-wide figures; None means "n/a"."""

    cpu_percent: float | None = None
    cpu_count: int | None = None
    mem_used: int | None = None  # bytes (total minus available)
    mem_total: int | None = None


class HostProbe:
    """Reads the host's figures. Construction primes ``cpu_percent`` (its first call gives 0.0)."""

    def __init__(self) -> None:
        self._primed = time.monotonic()
        try:
            psutil.cpu_percent(None)
        except Exception as exc:  # a host psutil cannot read shows "n/a"
            log.info("cannot read the CPU load: %s", exc)
        try:
            self._cpus: int | None = psutil.cpu_count()
        except Exception:
            self._cpus = None

    def read(self) -> HostReading:
        cpu: float | None = None
        if time.monotonic() - self._primed >= MIN_CPU_WINDOW_S:
            try:
                cpu = float(psutil.cpu_percent(None))
            except Exception:
                cpu = None
        try:
            memory = psutil.virtual_memory()
            used, total = int(memory.total - memory.available), int(memory.total)
        except Exception:
            used, total = None, None
        return HostReading(cpu_percent=cpu, cpu_count=self._cpus, mem_used=used, mem_total=total)
