"""What a run may use: GPUs, GPU memory, CPU threads, RSS, and a free-disk floor.

Saved in the run folder as ``resources.json`` so that a resume asks for the same. Qt-free and
torch-free: the trainer applies the torch parts (``trainer.cli.execute``), the heartbeat
thread watches RSS and disk (``trainer.api``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainer.errors import UsageError
from trainer.paths import write_private_text
from trainer.resources.sizes import format_size
from trainer.resources.store import GpuRequest

#: A run pauses when its disk has less free space than this (``--disk-floor``).
DEFAULT_DISK_FLOOR = 512 * 1024 * 1024
RESOURCES_FILE = "resources.json"
#: Environment variables that size the thread pools of torch's CPU kernels and friends.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Per-run limits; None: no limit."""

    max_rss: int | None = None  # bytes, the trainer and its children together
    cpu_threads: int | None = None
    gpu_mem: int | None = None  # bytes per GPU: what the run asks for free, and its cap
    disk_floor: int = DEFAULT_DISK_FLOOR

    def __post_init__(self) -> None:
        if self.max_rss is not None and self.max_rss <= 0:
            raise UsageError("--max-rss must be more than 0: write it like 8GiB")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise UsageError(f"--cpu-threads {self.cpu_threads} is too small: give 1 or more")
        if self.gpu_mem is not None and self.gpu_mem <= 0:
            raise UsageError("--gpu-mem must be more than 0: write it like 20GiB")
        if self.disk_floor < 0:
            raise UsageError("--disk-floor must be 0 or more: write it like 1GiB")

    def to_json(self) -> dict[str, Any]:
        return {"max_rss": self.max_rss, "cpu_threads": self.cpu_threads,
                "gpu_mem": self.gpu_mem, "disk_floor": self.disk_floor}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        floor = data.get("disk_floor")
        return cls(max_rss=data.get("max_rss"), cpu_threads=data.get("cpu_threads"),
                   gpu_mem=data.get("gpu_mem"),
                   disk_floor=DEFAULT_DISK_FLOOR if floor is None else int(floor))  # fmt: skip

    def updated(self, changes: dict[str, Any]) -> Limits:
        """A copy with the live-changeable limits in ``changes`` (max_rss, disk_floor)."""
        keep = {k: v for k, v in changes.items() if k in ("max_rss", "disk_floor")}
        return replace(self, **keep)

    def describe(self) -> str:
        parts = []
        if self.max_rss:
            parts.append(f"RSS ≤ {format_size(self.max_rss)}")
        if self.cpu_threads:
            parts.append(f"{self.cpu_threads} CPU threads")
        if self.gpu_mem:
            parts.append(f"GPU memory ≤ {format_size(self.gpu_mem)}")
        parts.append(f"disk floor {format_size(self.disk_floor)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Resources:
    """What a run asked for, as saved in its folder.

    ``gpus`` None is ``--gpus auto``: one GPU if the run may use CUDA and there is one.
    """

    gpus: GpuRequest | None = None
    share: bool = False
    policy: str = "least-used"
    priority: int = 0
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> dict[str, Any]:
        return {
            "gpus": None if self.gpus is None else self.gpus.to_json(),
            "share": self.share,
            "policy": self.policy,
            "priority": self.priority,
            "limits": self.limits.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resources:
        gpus = data.get("gpus")
        return cls(
            gpus=None if gpus is None else GpuRequest.from_json(gpus),
            share=bool(data.get("share")),
            policy=str(data.get("policy") or "least-used"),
            priority=int(data.get("priority") or 0),
            limits=Limits.from_json(data.get("limits") or {}),
        )

    def save(self, run_root: Path) -> None:
        write_private_text(run_root / RESOURCES_FILE, json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, run_root: Path) -> Resources:
        """The run's saved resources (defaults if it has none, as older runs)."""
        try:
            return cls.from_json(json.loads((run_root / RESOURCES_FILE).read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            return cls()


def thread_environment(cpu_threads: int | None) -> dict[str, str]:
    """The variables to set, before torch is imported, for ``cpu_threads`` threads."""
    return {} if not cpu_threads else {name: str(cpu_threads) for name in THREAD_VARS}


def tree_rss(pid: int | None = None) -> int | None:
    """Resident memory of a process and all its children (DataLoader workers), in bytes."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        return int(total)
    except psutil.Error:
        return None


def disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
