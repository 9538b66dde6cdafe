"""What the New Run dialog's GPU picker shows and what it asks for. Qt-free.

:func:`read_gpu_inventory` reads the GPUs (NVML, or simulated ones) and the machine's lease
store: each GPU's free memory and the runs that hold it. It blocks (NVML can take seconds to
start): call it off the GUI thread. :class:`ResourceChoice` is what the user picked; it checks
itself against the inventory and becomes :class:`~desktop_app.runs_ctl.spec.LaunchSpec` fields
(``trainer run``'s ``--gpus``, ``--gpu-mem``, ``--share-gpu``, ``--gpu-policy``,
``--priority``, ``--max-rss``, ``--cpu-threads``, ``--disk-floor``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.errors import UsageError
from trainer.resources.acquire import read_inventory
from trainer.resources.gpus import GpuBackend, GpuReading
from trainer.resources.limits import DEFAULT_DISK_FLOOR
from trainer.resources.sizes import format_size, parse_size
from trainer.resources.store import POLICIES, Lease, LeaseStore

#: The picker's GPU modes, as ``--gpus`` takes them ("count" is N, "devices" is device=I,J).
GPU_MODES = ("auto", "none", "any", "count", "devices")
DEFAULT_POLICY = POLICIES[0]


@dataclass(frozen=True)
class GpuRow:
    """One GPU as the picker lists it."""

    index: int
    name: str
    free: int | None  # bytes, as the lease store counts them; None: n/a
    total: int | None
    simulated: bool
    holders: tuple[str, ...] = ()  # the names of the runs that lease it ("(shared)" marked)

    def label(self) -> str:
        """``GPU 0  NVIDIA H200 (simulated) — 98 GiB free of 140 GiB — held by run-a``."""
        name = self.name + (" (simulated)" if self.simulated else "")
        memory = f"{format_size(self.free)} free of {format_size(self.total)}"
        held = f"held by {', '.join(self.holders)}" if self.holders else "free"
        return f"GPU {self.index}  {name} — {memory} — {held}"


@dataclass(frozen=True)
class GpuInventory:
    """The machine's GPUs and their holders at one moment; no rows: a CPU-only machine."""

    rows: tuple[GpuRow, ...] = ()
    backend: str = ""
    simulated: bool = False
    unavailable_reason: str | None = None
    #: Set when the lease store could not be read (the GPUs are still listed).
    error: str | None = None

    @property
    def cpu_only(self) -> bool:
        return not self.rows

    def summary(self) -> str:
        """One line: ``2 GPUs via NVML``, ``1 simulated GPU`` or ``no GPU (CPU only)``."""
        if self.cpu_only:
            why = f": {self.unavailable_reason}" if self.unavailable_reason else ""
            return f"no GPU (CPU only){why}"
        n = len(self.rows)
        plural = "s" * (n != 1)
        if self.simulated:
            return f"{n} simulated GPU{plural}"
        return f"{n} GPU{plural} via {self.backend}"

    def biggest(self) -> int | None:
        """The largest total memory of any GPU (None if none is known)."""
        totals = [r.total for r in self.rows if r.total is not None]
        return max(totals, default=None)


def read_gpu_inventory(
    backend: GpuBackend | None = None,
    store: Callable[[], LeaseStore] = LeaseStore,
) -> GpuInventory:
    """Read the GPUs and the leases on them (blocking: call it off the GUI thread).

    ``backend`` defaults to ``$TRAINDESK_SIMULATED_GPUS`` or NVML; ``store`` opens the lease
    store (``$TRAINDESK_LEASES``, else the user state dir's). Never raises for a store that
    cannot be read: the inventory then carries the error.
    """
    inventory = read_inventory(backend)
    leases: list[Lease] = []
    error = None
    if inventory.devices:
        try:
            with store() as lease_store:
                leases = lease_store.leases()
        except UsageError as exc:
            error = str(exc)
    rows = tuple(
        _row(device, [x for x in leases if x.gpu == device.index], inventory.simulated)
        for device in inventory.devices
    )
    return GpuInventory(
        rows, inventory.label, inventory.simulated, inventory.unavailable_reason, error
    )


def _row(device: GpuReading, leases: Sequence[Lease], simulated: bool) -> GpuRow:
    holders = tuple(
        dict.fromkeys(f"{Path(x.run).name}{' (shared)' if x.shared else ''}" for x in leases)
    )
    return GpuRow(
        device.index,
        device.name or "?",
        free_memory(device, leases, simulated),
        device.mem_total,
        device.simulated or simulated,
        holders,
    )


def free_memory(device: GpuReading, leases: Sequence[Lease], simulated: bool) -> int | None:
    """Free bytes as the lease store counts them: what every process uses, plus the budgets
    leases have reserved and not used yet. A simulated GPU's "used" is an animation: there
    only budgets count."""
    if device.mem_total is None:
        return None
    budgets = sum(x.mem_budget or 0 for x in leases)
    if simulated or device.simulated:
        return max(0, device.mem_total - budgets)
    if device.mem_used is None:
        return None
    pids = {x.pid for x in leases}
    ours = sum(mem or 0 for pid, mem in device.processes or [] if pid in pids)
    return max(0, device.mem_total - device.mem_used - max(0, budgets - ours))


@dataclass(frozen=True)
class ResourceChoice:
    """What the user asked for in the picker. Text fields hold sizes as typed ("20GiB");
    empty text, 0 threads, priority 0, the default policy and ``share=False`` pass nothing."""

    mode: str = "auto"
    count: int = 1
    devices: tuple[int, ...] = ()
    gpu_mem: str = ""
    share: bool = False
    policy: str = DEFAULT_POLICY
    priority: int = 0
    max_rss: str = ""
    cpu_threads: int = 0
    disk_floor: str = ""

    @property
    def wants_gpu(self) -> bool:
        """True unless the run asks for no GPU ("none"); "auto" may still get one."""
        return self.mode != "none"

    def gpus_arg(self) -> str | None:
        """``--gpus`` as the trainer takes it; None for auto."""
        if self.mode == "auto":
            return None
        if self.mode == "count":
            return str(self.count)
        if self.mode == "devices":
            return "device=" + ",".join(map(str, sorted(self.devices)))
        return self.mode

    def problems(self, inventory: GpuInventory | None) -> dict[str, str]:
        """Field -> what is wrong with it (empty: launchable). ``inventory`` None: the GPUs
        are not read yet, so counts and devices are not checked against them."""
        problems: dict[str, str] = {}
        if self.mode not in GPU_MODES:
            problems["gpus"] = f"unknown GPU choice {self.mode!r}"
        if self.policy not in POLICIES:
            problems["policy"] = f"unknown policy {self.policy!r}: use {', '.join(POLICIES)}"
        rows = inventory.rows if inventory is not None else None
        if rows is not None and not rows and self.mode in ("any", "count", "devices"):
            problems["gpus"] = "this machine has no GPU: choose auto or none"
        elif self.mode == "count" and self.count < 1:
            problems["gpus"] = "ask for 1 GPU or more"
        elif self.mode == "count" and rows is not None and self.count > len(rows):
            problems["gpus"] = (
                f"this machine has {len(rows)} GPU{'s' * (len(rows) != 1)}: ask for fewer"
            )
        elif self.mode == "devices" and not self.devices:
            problems["gpus"] = "tick the GPUs the run should have"
        elif self.mode == "devices" and rows is not None:
            missing = sorted(set(self.devices) - {r.index for r in rows})
            if missing:
                problems["gpus"] = f"there is no GPU {missing[0]} on this machine"
        sizes = {
            "gpu_mem": ("GPU memory", self.gpu_mem),
            "max_rss": ("max RSS", self.max_rss),
            "disk_floor": ("disk floor", self.disk_floor),
        }
        for key, (what, text) in sizes.items():
            if not text.strip():
                continue
            try:
                value = parse_size(text, what=what)
            except UsageError as exc:
                problems[key] = str(exc)
                continue
            if value <= 0 and key != "disk_floor":
                problems[key] = f"{what} must be more than 0"
        gpu_mem = self._size(self.gpu_mem)
        biggest = inventory.biggest() if inventory is not None else None
        too_big = self.wants_gpu and gpu_mem and biggest and gpu_mem > biggest
        if too_big and "gpu_mem" not in problems:
            problems["gpu_mem"] = (
                f"more than any GPU here has ({format_size(biggest)}): ask for less"
            )
        if self.cpu_threads < 0:
            problems["cpu_threads"] = "give 1 thread or more (0: the default)"
        return problems

    def spec_fields(self) -> dict[str, Any]:
        """The :class:`LaunchSpec` fields for this choice (call once :meth:`problems` is
        empty); what equals the trainer's default is left out."""
        gpu = self.wants_gpu
        gpu_mem = self._size(self.gpu_mem) if gpu else None
        disk_floor = self._size(self.disk_floor)
        return {
            "gpus": self.gpus_arg(),
            "gpu_mem": gpu_mem or None,
            "share_gpu": gpu and self.share,
            "gpu_policy": self.policy if gpu and self.policy != DEFAULT_POLICY else None,
            "priority": self.priority if gpu and self.priority else None,
            "max_rss": self._size(self.max_rss) or None,
            "cpu_threads": self.cpu_threads or None,
            "disk_floor": None if disk_floor in (None, DEFAULT_DISK_FLOOR) else disk_floor,
        }

    @staticmethod
    def _size(text: str) -> int | None:
        if not text.strip():
            return None
        try:
            return parse_size(text)
        except UsageError:
            return None
