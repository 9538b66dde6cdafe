"""GPUs, CPU and RAM: Qt-free backends and sampler, and the system panel (:mod:`.panel`, Qt).

Importing this package imports no Qt; ``desktop_app.system.panel`` does.
"""

from desktop_app.system.host import HostProbe, HostReading
from desktop_app.system.sampler import SystemSampler, SystemSnapshot
from trainer.resources.gpus import (
    ENV_SIMULATED,
    GpuBackend,
    GpuReading,
    NvmlBackend,
    SimulatedBackend,
    UnavailableBackend,
    backend_from_env,
    parse_simulated_spec,
)

__all__ = [
    "ENV_SIMULATED",
    "GpuBackend",
    "GpuReading",
    "HostProbe",
    "HostReading",
    "NvmlBackend",
    "SimulatedBackend",
    "SystemSampler",
    "SystemSnapshot",
    "UnavailableBackend",
    "backend_from_env",
    "parse_simulated_spec",
]
