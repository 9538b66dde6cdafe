"""System samples for the journal: the process's CPU % and RSS, and GPU memory where a GPU is."""

from __future__ import annotations

import sys
from typing import Any


class SystemSampler:
    """Samples this process. torch's CUDA figures are read only if torch is already in use.

    A figure that cannot be read is None ("n/a"); sampling never raises.
    """

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first reading is always 0.0: prime it

    def sample(self) -> tuple[float | None, int | None, list[dict[str, Any]] | None]:
        try:
            cpu = self._proc.cpu_percent(None)
            rss = self._proc.memory_info().rss
        except Exception:  # a figure psutil cannot read is "n/a", never fatal
            cpu, rss = None, None
        try:
            gpus = _torch_gpus()
        except Exception:  # e.g. torch half-imported by the training thread right now
            gpus = None
        return cpu, rss, gpus


def _torch_gpus() -> list[dict[str, Any]] | None:
    cuda: Any = getattr(sys.modules.get("torch"), "cuda", None)
    if cuda is None or not cuda.is_available() or not cuda.is_initialized():
        return None
    gpus = []
    for index in range(cuda.device_count()):
        try:
            free, total = cuda.mem_get_info(index)
            gpus.append(
                {
                    "index": index,
                    "mem_used": int(total - free),
                    "mem_total": int(total),
                    "torch_allocated": int(cuda.memory_allocated(index)),
                    "torch_reserved": int(cuda.memory_reserved(index)),
                    "util": _util(cuda, index),
                }
            )
        except Exception:  # one device's figure missing is "n/a", not an error
            continue
    return gpus or None


def _util(cuda: Any, index: int) -> float | None:
    try:
        return float(cuda.utilization(index))
    except Exception:
        return None
