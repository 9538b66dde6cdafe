"""Getting a run its GPUs: read the inventory, queue in the lease store, wait, lease.

Qt-free and torch-free: the trainer process calls :func:`acquire` for itself before torch
touches CUDA, then sets ``CUDA_VISIBLE_DEVICES`` from the leases (:func:`cuda_environment`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import UsageError
from trainer.resources.gpus import ENV_SIMULATED, GpuBackend, GpuReading, backend_from_env
from trainer.resources.limits import Resources
from trainer.resources.store import POLICIES, GpuRequest, Lease, LeaseStore

log = logging.getLogger(__name__)

#: Seconds between tries while a run waits in the queue.
QUEUE_POLL_S = 1.0


@dataclass(frozen=True)
class Inventory:
    """The machine's GPUs as one backend saw them."""

    devices: list[GpuReading]
    label: str
    simulated: bool
    unavailable_reason: str | None


def read_inventory(backend: GpuBackend | None = None) -> Inventory:
    """One reading of every GPU (NVML, or simulated by ``$TRAINDESK_SIMULATED_GPUS``)."""
    own = backend is None
    backend = backend if backend is not None else backend_from_env()
    if own:
        backend.init()
    try:
        devices = backend.devices()
    finally:
        if own:
            backend.shutdown()
    return Inventory(devices, backend.label, backend.simulated, backend.unavailable_reason)


def parse_gpus(text: str | None) -> GpuRequest | None:
    """``--gpus``: ``auto`` (None: decided by the device), ``none``, ``any``, ``N`` or
    ``device=I,J``."""
    value = (text or "auto").strip().lower()
    if value == "auto":
        return None
    if value in ("none", "0"):
        return GpuRequest()
    if value == "any":
        return GpuRequest(count=1)
    if value.isdigit():
        return GpuRequest(count=int(value))
    if value.startswith("device="):
        parts = value.removeprefix("device=").split(",")
        if parts and all(p.strip().isdigit() for p in parts):
            ids = tuple(dict.fromkeys(int(p) for p in parts))
            return GpuRequest(ids=ids)
    raise UsageError(f"--gpus {text!r} is not understood: give auto, none, any, N or device=0,1")


def decide_request(
    gpus: GpuRequest | None,
    device: str,
    inventory: Inventory,
    *,
    mem_budget: int | None = None,
    share: bool = False,
    policy: str = "least-used",
) -> GpuRequest:
    """The request to make: ``--gpus`` as given, or (``auto``) one GPU when the run may use
    CUDA and the machine has GPUs; ``device=cuda:N`` asks for GPU N."""
    if policy not in POLICIES:
        raise UsageError(f"--gpu-policy {policy!r} is unknown: use one of {', '.join(POLICIES)}")
    if gpus is None:
        if device == "cpu" or not inventory.devices:
            return GpuRequest()
        index = device.partition(":")[2]
        gpus = GpuRequest(ids=(int(index),)) if index.isdigit() else GpuRequest(count=1)
    if not gpus.wants_gpu:
        return gpus
    return GpuRequest(count=gpus.count, ids=gpus.ids, mem_budget=mem_budget, share=share,
                      policy=policy)  # fmt: skip


def validate(request: GpuRequest, inventory: Inventory) -> None:
    """Refuse a request this machine can never satisfy (it would wait for ever)."""
    if not request.wants_gpu:
        return
    if not inventory.devices:
        why = inventory.unavailable_reason or "no GPU found"
        raise UsageError(
            f"the run asks for {request.describe()} but this machine has none ({why}): use "
            f"--gpus none, or set {ENV_SIMULATED}=2x80GiB to try it with simulated GPUs"
        )
    indexes = {d.index for d in inventory.devices}
    if request.ids:
        missing = [i for i in request.ids if i not in indexes]
        if missing:
            raise UsageError(
                f"there is no GPU {missing[0]} (this machine has {len(indexes)}: "
                f"{', '.join(map(str, sorted(indexes)))}): pick another with --gpus device=I"
            )
    elif request.count > len(indexes):
        raise UsageError(
            f"the run asks for {request.count} GPUs but this machine has {len(indexes)}: "
            "ask for fewer with --gpus N"
        )
    if request.mem_budget:
        biggest = max((d.mem_total or 0) for d in inventory.devices)
        if request.mem_budget > biggest:
            raise UsageError(
                f"--gpu-mem {request.mem_budget / 2**30:.3g} GiB is more than any GPU here has "
                f"({biggest / 2**30:.3g} GiB): ask for less"
            )


def acquire(
    run_root: Path,
    request: GpuRequest,
    resources: Resources,
    *,
    on_queued: Callable[[str, int], None],
    should_stop: Callable[[], bool],
    wake: threading.Event | None = None,
    store: LeaseStore | None = None,
    backend: GpuBackend | None = None,
) -> list[Lease] | None:
    """Lease ``request`` for this process, queueing (FIFO within priority) until it can.

    ``on_queued(reason, position)`` is called each time the reason for waiting changes.
    Returns the leases, [] when no GPU was asked for, or None when stopped while waiting
    (``should_stop()`` true, or the entry was cancelled from the queue).
    """
    if not request.wants_gpu:
        return []
    own_backend = backend is None
    backend = backend if backend is not None else backend_from_env()
    if own_backend:
        backend.init()
    own_store = store is None
    store = store if store is not None else LeaseStore()
    wake = wake if wake is not None else threading.Event()
    run = str(run_root)
    queue_id: int | None = None
    try:
        inventory = read_inventory(backend)
        validate(request, inventory)
        queue_id = store.enqueue(run, request, priority=resources.priority)
        said = None
        while True:
            grant = store.try_acquire(run, request, inventory.devices,
                                      simulated=inventory.simulated, queue_id=queue_id)  # fmt: skip
            if grant.ok:
                queue_id = None  # the grant took it out of the queue
                return grant.leases
            if grant.reason.startswith("cancelled"):
                queue_id = None
                on_queued("cancelled: taken out of the queue", 0)
                return None
            if grant.reason != said:
                said = grant.reason
                position = next((e.position for e in store.queue() if e.id == queue_id), 0)
                on_queued(grant.reason, position)
            if should_stop():
                return None
            wake.wait(QUEUE_POLL_S)
            wake.clear()
            if should_stop():
                return None
            inventory = read_inventory(backend)
    finally:
        if queue_id is not None:
            store.cancel(queue_id)
        if own_store:
            store.close()
        if own_backend:
            backend.shutdown()


def release(run_root: Path, store: LeaseStore | None = None) -> None:
    """Give back this process's leases for the run."""
    own = store is None
    store = store if store is not None else LeaseStore()
    try:
        store.release(str(run_root), pid=os.getpid())
    finally:
        if own:
            store.close()


def cuda_environment(leases: list[Lease]) -> dict[str, str]:
    """``CUDA_VISIBLE_DEVICES`` for the leased devices, numbered as NVML numbers them."""
    if not leases:
        return {}
    ids = sorted({lease.gpu for lease in leases})
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ",".join(map(str, ids))}
