"""GPU readings behind one small interface: NVML for real devices, a simulation for tests.

Shared by the app (gauges) and the trainer (leases, ``trainer gpus``): Qt-free, torch-free.
Every NVML call is wrapped: an error on one figure makes that figure None (shown as "n/a")
and nothing else; a transient NVML error (a timeout, "unknown", "not ready") is tried again a
couple of times first. A missing driver is not an error but a state: :meth:`init` sets
``unavailable_reason`` and the backend reports no devices. No method here raises.

Set ``TRAINDESK_SIMULATED_GPUS=2x80GiB`` to get two simulated 80 GiB GPUs instead of NVML
(:func:`backend_from_env`); every reading is then marked ``simulated``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import Retrying

from trainer import settings
from trainer.retry import transient

log = logging.getLogger(__name__)

ENV_SIMULATED = settings.SIMULATED_GPUS.name
#: The reason NvmlBackend gives when the NVML library (the NVIDIA driver) is missing.
NO_DRIVER = "No NVIDIA driver found"

GiB = 1024**3
_UNITS = {"tib": 1024**4, "tb": 10**12, "gib": GiB, "gb": 10**9, "mib": 1024**2, "mb": 10**6}
_SPEC_RE = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)
MAX_SIMULATED = 64
#: NVML error codes worth another try: the driver was slow or busy, not a missing feature or
#: a lost GPU (NVML_ERROR_GPU_IS_LOST and the like stay "n/a" at once).
TRANSIENT_NVML_ERRORS = ("NVML_ERROR_TIMEOUT", "NVML_ERROR_UNKNOWN", "NVML_ERROR_NOT_READY")
#: Tries of one NVML call that fails transiently. Readings come about once a second, so the
#: waits between them stay short (50 ms, then 100 ms).
NVML_ATTEMPTS = 3

Process = tuple[int, int | None]  # (pid, GPU memory in bytes or None)


@dataclass(frozen=True)
class GpuReading:
    """One device's figures at one moment; None means "n/a" (NVML could not say)."""

    index: int
    name: str | None = None
    mem_used: int | None = None  # bytes, all processes
    mem_total: int | None = None  # bytes
    util: float | None = None  # percent
    temperature: float | None = None  # degrees Celsius
    power_w: float | None = None  # watts
    #: Compute processes on the device; None when NVML could not list them ("n/a").
    processes: list[Process] | None = None
    simulated: bool = False


class GpuBackend(Protocol):
    """Where GPU readings come from. Call :meth:`init` once, off the GUI thread."""

    label: str  # "NVML", "simulated", ... shown to the user
    simulated: bool
    unavailable_reason: str | None  # set by init() when there is nothing to read

    def init(self) -> None:
        """Start the backend (may take seconds); never raises."""
        ...

    def devices(self) -> list[GpuReading]:
        """One reading per device; [] when unavailable. Never raises."""
        ...

    def shutdown(self) -> None:
        """Release the backend; idempotent, never raises."""
        ...


class NvmlBackend:
    """Reads NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``).

    ``nvml`` replaces the ``pynvml`` module (a stand-in with the same functions and
    ``NVMLError``). Tests can also subclass and override :meth:`_raw`, the one place that calls
    into NVML.
    """

    label = "NVML"
    simulated = False

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._started = False
        self._count: int | None = None
        self._handles: dict[int, Any] = {}
        self._noted: set[str] = set()
        # Calls (function and arguments) whose transient errors outlasted the retries: tried
        # once per reading until one works, so a GPU that keeps timing out cannot slow every
        # reading down.
        self._flaky: set[tuple[str, ...]] = set()
        self.unavailable_reason: str | None = None

    def init(self) -> None:
        if self._started:
            return
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                self.unavailable_reason = "nvidia-ml-py is not installed: no GPU readings"
                return
            self._nvml = pynvml
        try:
            self._retrying("nvmlInit", ("nvmlInit",))(self._raw, "nvmlInit")
        except Exception as exc:
            self.unavailable_reason = _init_failure(self._nvml, exc)
            log.info("GPU readings unavailable: %s (%s)", self.unavailable_reason, exc)
            return
        self._started = True
        self.unavailable_reason = None
        self._count = self._call("nvmlDeviceGetCount")
        if self._count == 0:
            self.unavailable_reason = "No NVIDIA GPU found"

    def devices(self) -> list[GpuReading]:
        if not self._started:
            return []
        if self._count is None:  # counting failed at init: try again
            self._count = self._call("nvmlDeviceGetCount")
        return [self._read(index) for index in range(self._count or 0)]

    def shutdown(self) -> None:
        if self._started:
            self._started = False
            self._handles.clear()
            self._call("nvmlShutdown")

    # ------------------------------------------------------------------ internals
    def _raw(self, function: str, *args: Any) -> Any:
        """Call one NVML function (may raise ``NVMLError``)."""
        return getattr(self._nvml, function)(*args)

    def _retrying(self, function: str, call: tuple[str, ...]) -> Retrying:
        """The retrier for one NVML call: transient errors only, a short backoff."""
        return transient(
            f"NVML {function}",
            attempts=1 if call in self._flaky else NVML_ATTEMPTS,
            max_wait=0.1,
            retry_on=_nvml_error(self._nvml),
            when=self._transient,
            logger=log,
        )

    def _transient(self, exc: BaseException) -> bool:
        codes = {getattr(self._nvml, name, None) for name in TRANSIENT_NVML_ERRORS} - {None}
        return getattr(exc, "value", None) in codes

    def _call(self, function: str, *args: Any) -> Any:
        """Call one NVML function; None (logged once per function and error) if it fails.

        A transient error is tried again first (:data:`NVML_ATTEMPTS` tries in all).
        """
        call = (function, *map(repr, args))  # handles are cached: their repr is stable
        try:
            result = self._retrying(function, call)(self._raw, function, *args)
        except Exception as exc:
            if self._transient(exc):
                self._flaky.add(call)
            note = f"{function}: {type(exc).__name__}"
            if note not in self._noted:
                self._noted.add(note)
                expected = isinstance(exc, _nvml_error(self._nvml))
                log.log(logging.INFO if expected else logging.WARNING, "NVML %s (%s)", note, exc)
            return None
        self._flaky.discard(call)
        return result

    def _read(self, index: int) -> GpuReading:
        handle = self._handles.get(index)
        if handle is None:
            handle = self._call("nvmlDeviceGetHandleByIndex", index)
            if handle is None:
                return GpuReading(index)
            self._handles[index] = handle
        memory = self._call("nvmlDeviceGetMemoryInfo", handle)
        rates = self._call("nvmlDeviceGetUtilizationRates", handle)
        sensor = getattr(self._nvml, "NVML_TEMPERATURE_GPU", 0)
        power_mw = _number(self._call("nvmlDeviceGetPowerUsage", handle))
        processes = self._call("nvmlDeviceGetComputeRunningProcesses", handle)
        return GpuReading(
            index=index,
            name=_text(self._call("nvmlDeviceGetName", handle)),
            mem_used=_integer(getattr(memory, "used", None)),
            mem_total=_integer(getattr(memory, "total", None)),
            util=_number(getattr(rates, "gpu", None)),
            temperature=_number(self._call("nvmlDeviceGetTemperature", handle, sensor)),
            power_w=None if power_mw is None else power_mw / 1000.0,
            processes=_processes(processes),
        )


class SimulatedBackend:
    """Deterministic pretend GPUs (``"2x80GiB"``), for tests and demos; marked simulated.

    Figures move a little with each reading. Tests can pin them: :meth:`set_memory` and
    :meth:`set_processes` (thread-safe).
    """

    label = "simulated"
    simulated = True

    def __init__(self, totals: Sequence[int], spec: str = "") -> None:
        if not totals:
            raise ValueError("a simulated backend needs at least one GPU")
        self.totals = list(totals)
        self.spec = spec or f"{len(self.totals)}x{self.totals[0] / GiB:g}GiB"
        self.unavailable_reason: str | None = None
        self._tick = 0
        self._lock = threading.Lock()
        self._memory: dict[int, int | None] = {}
        self._processes: dict[int, list[Process]] = {}

    @classmethod
    def from_spec(cls, spec: str) -> SimulatedBackend:
        """``"2x80GiB"`` (or ``"1x80GiB,1x24GiB"``); ValueError with an example otherwise."""
        return cls(parse_simulated_spec(spec), spec=spec.strip())

    def set_memory(self, index: int, used: int | None) -> None:
        """Pin device ``index``'s used memory (None: report "n/a")."""
        with self._lock:
            self._memory[index] = used

    def set_processes(self, index: int, processes: Sequence[Process]) -> None:
        """Report ``processes`` ((pid, bytes) pairs) as running on device ``index``."""
        with self._lock:
            self._processes[index] = list(processes)

    def init(self) -> None:
        self._tick = 0

    def devices(self) -> list[GpuReading]:
        self._tick += 1
        with self._lock:
            return [self._reading(i, total) for i, total in enumerate(self.totals)]

    def shutdown(self) -> None:
        pass

    def _reading(self, index: int, total: int) -> GpuReading:
        wave = (self._tick + 3 * index) % 10  # 0..9, a slow saw-tooth
        default_used = int(total * (0.30 + (0.15 * index) % 0.45 + 0.02 * wave))
        return GpuReading(
            index=index,
            name=f"Simulated GPU {total / GiB:g} GiB",
            mem_used=self._memory.get(index, default_used),
            mem_total=total,
            util=float((35 + 20 * index + 5 * wave) % 101),
            temperature=float(45 + 4 * index + wave // 2),
            power_w=float(110 + 25 * index + 3 * wave),
            processes=list(self._processes.get(index, [])),
            simulated=True,
        )


class UnavailableBackend:
    """No GPU readings, with a reason to show (e.g. a bad ``TRAINDESK_SIMULATED_GPUS``)."""

    label = "none"
    simulated = False

    def __init__(self, reason: str) -> None:
        self.unavailable_reason: str | None = reason

    def init(self) -> None:
        pass

    def devices(self) -> list[GpuReading]:
        return []

    def shutdown(self) -> None:
        pass


def parse_simulated_spec(spec: str) -> list[int]:
    """The memory sizes in bytes of ``"2x80GiB"`` (two 80 GiB GPUs); groups joined by commas."""
    totals: list[int] = []
    for group in spec.split(","):
        match = _SPEC_RE.match(group)
        unit = _UNITS.get(match.group(3).lower()) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"{ENV_SIMULATED}={spec!r}: {group.strip()!r} is not COUNTxMEMORY: write e.g. "
                "2x80GiB or 1x24GiB (units: TiB, TB, GiB, GB, MiB, MB)"
            )
        count, size = int(match.group(1)), float(match.group(2))
        if count < 1 or size <= 0:
            raise ValueError(
                f"{ENV_SIMULATED}={spec!r}: the count and the memory must be above zero"
            )
        totals += [int(size * unit)] * count
    if len(totals) > MAX_SIMULATED:
        raise ValueError(f"{ENV_SIMULATED}={spec!r}: at most {MAX_SIMULATED} simulated GPUs")
    return totals


def backend_from_env(environ: Mapping[str, str] | None = None) -> GpuBackend:
    """The simulated backend if ``TRAINDESK_SIMULATED_GPUS`` is set, else NVML.

    A bad value gives an :class:`UnavailableBackend` that says what is wrong (never raises).
    """
    spec = settings.SIMULATED_GPUS.get(environ)
    if not spec:
        return NvmlBackend()
    try:
        return SimulatedBackend.from_spec(spec)
    except ValueError as exc:
        log.warning("%s", exc)
        return UnavailableBackend(str(exc))


def _nvml_error(nvml: Any) -> type[BaseException] | tuple[()]:
    error = getattr(nvml, "NVMLError", None)
    return error if isinstance(error, type) and issubclass(error, BaseException) else ()


def _init_failure(nvml: Any, exc: BaseException) -> str:
    """The user-facing reason why nvmlInit failed."""
    kinds = (
        ("NVMLError_LibraryNotFound", NO_DRIVER),
        ("NVMLError_DriverNotLoaded", "The NVIDIA driver is not loaded"),
        ("NVMLError_NoPermission", "No permission to use the NVIDIA driver"),
        ("NVMLError_LibRmVersionMismatch", "The NVIDIA driver and library versions differ"),
    )
    for name, reason in kinds:
        kind = getattr(nvml, name, None)
        if isinstance(kind, type) and isinstance(exc, kind):
            return reason
    return f"NVML could not start ({exc or type(exc).__name__})"


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):  # older bindings return bytes
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _processes(found: Any) -> list[Process] | None:
    if found is None:
        return None
    out: list[Process] = []
    for proc in found:
        pid = _integer(getattr(proc, "pid", None))
        if pid is not None:
            out.append((pid, _integer(getattr(proc, "usedGpuMemory", None))))
    return out
