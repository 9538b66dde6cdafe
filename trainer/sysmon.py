"""System samples for the journal: the process's CPU % and RSS, and GPU memory where a GPU is."""

from __future__ import annotations

import sys
from typing import Any


class SystemSampler:
    """Samples this process. torch's CUDA figures are read only if torch is already in use."""

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
        return cpu, rss, _torch_gpus()


def _torch_gpus() -> list[dict[str, Any]] | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    gpus = []
    for index in range(torch.cuda.device_count()):
        try:
            free, total = torch.cuda.mem_get_info(index)
            gpus.append(
                {
                    "index": index,
                    "mem_used": int(total - free),
                    "mem_total": int(total),
                    "torch_allocated": int(torch.cuda.memory_allocated(index)),
                    "torch_reserved": int(torch.cuda.memory_reserved(index)),
                    "util": _util(torch, index),
                }
            )
        except Exception:
            continue
    return gpus or None


def _util(torch: Any, index: int) -> float | None:
    try:
        return float(torch.cuda.utilization(index))
    except Exception:
        return None
