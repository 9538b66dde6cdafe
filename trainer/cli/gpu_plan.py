"""A run's GPUs from the CLI's side: the request planned before the run folder exists, then
the leases held (queued while busy) and the limits applied once it does.

Shared by recipe and script runs (``execute``) and command and torchrun runs
(``command_run``); neither imports the other for it.
"""

from __future__ import annotations

import os
from typing import Any

from trainer.api import Run
from trainer.errors import ConfigError
from trainer.resources.acquire import (
    acquire,
    cuda_environment,
    decide_request,
    read_inventory,
    validate,
)
from trainer.resources.limits import Limits, Resources
from trainer.resources.store import GpuRequest


def check_device(config: dict[str, Any]) -> None:
    """Fail early, before a run folder exists, when the config asks for a missing GPU."""
    device = str(config.get("device", "auto"))
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"config key 'device': {device!r} is not available here (no CUDA device): "
            "use --device cpu or auto"
        )
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"config key 'device': {device!r} does not exist ({torch.cuda.device_count()} CUDA "
            "devices): use a smaller index or auto"
        )


def plan_gpus(resources: Resources, config: dict[str, Any]) -> GpuRequest:
    """The GPU request to make, refused now (before anything is written) if this machine
    can never satisfy it."""
    inventory = read_inventory()
    request = decide_request(
        resources.gpus, str(config.get("device", "auto")), inventory,
        mem_budget=resources.limits.gpu_mem, share=resources.share, policy=resources.policy,
    )  # fmt: skip
    validate(request, inventory)
    if not request.wants_gpu:
        check_device(config)
    return request


def hold_resources(run: Run, request: GpuRequest, resources: Resources) -> list[int] | None:
    """Lease the run's GPUs (waiting, queued, while they are busy) and apply its limits.

    Returns the leased GPU indexes, or None if the run was stopped while it waited.
    """
    run.limits = resources.limits
    gpus: list[int] = []
    if request.wants_gpu:
        leases = acquire(
            run.paths.root, request, resources, on_queued=run.queued,
            should_stop=run.poll_control,
        )  # fmt: skip
        if leases is None:
            return None
        os.environ.update(cuda_environment(leases))
        gpus = sorted({lease.gpu for lease in leases})
        device = str(run.config.get("device", "auto"))
        if device.startswith("cuda:"):
            run.config["device"] = "cuda"  # the leased GPU is the process's cuda:0
        check_device(run.config)
    apply_torch_limits(resources.limits)
    run.granted(gpus, resources.limits.describe())
    return gpus


def apply_torch_limits(limits: Limits) -> None:
    """CPU threads and the GPU memory cap, in torch (imported here, after CUDA_VISIBLE_DEVICES)."""
    if not limits.cpu_threads and not limits.gpu_mem:
        return
    import torch

    if limits.cpu_threads:
        torch.set_num_threads(limits.cpu_threads)
    if limits.gpu_mem and torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            total = torch.cuda.get_device_properties(index).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, limits.gpu_mem / total), index)
