"""The system panel's Qt-free parts: GPU backends, the host probe, the sampler, run samples.

No QApplication here; these sit next to the panel's widget tests so that one glob runs both.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pynvml
import pytest

from desktop_app.system import host as host_module
from desktop_app.system.host import HostProbe
from desktop_app.system.run_samples import (
    SampleFeed,
    SampleHistory,
    batch_from_rows,
    figures_from,
    read_run_pids,
)
from desktop_app.system.sampler import (
    MIN_INTERVAL_S,
    THREAD_NAME,
    SystemSampler,
    SystemSnapshot,
    find_owners,
)
from trainer.journal.reader import SampleRow
from trainer.journal.writer import JournalWriter
from trainer.resources.gpus import (
    ENV_SIMULATED,
    NO_DRIVER,
    GiB,
    GpuReading,
    NvmlBackend,
    SimulatedBackend,
    UnavailableBackend,
    backend_from_env,
    parse_simulated_spec,
)

MakeRun = Callable[..., JournalWriter]
WAIT_S = 10.0


def nvml_error(code: int = pynvml.NVML_ERROR_NOT_SUPPORTED) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


class FailingNvml(NvmlBackend):
    """NVML that starts and counts ``count`` GPUs, then fails every other call."""

    def __init__(self, count: int = 2, fail_init: int | None = None, handles: bool = True):
        super().__init__(nvml=pynvml)
        self.count = count
        self.fail_init = fail_init
        self.handles = handles
        self.calls: list[str] = []

    def _raw(self, function: str, *args: Any) -> Any:
        self.calls.append(function)
        if self.fail_init is None:
            if function == "nvmlInit":
                return None
            if function == "nvmlDeviceGetCount":
                return self.count
            if function == "nvmlDeviceGetHandleByIndex" and self.handles:
                return f"handle-{args[0]}"
        raise nvml_error(self.fail_init or pynvml.NVML_ERROR_NOT_SUPPORTED)


@pytest.fixture(autouse=True)
def no_sampler_threads() -> Iterator[None]:
    yield
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def test_the_backends_import_no_qt() -> None:
    code = (
        "import sys, desktop_app.system; "
        "print(sorted(m for m in sys.modules if 'PySide' in m or 'pyqtgraph' in m))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------- simulated GPUs
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("2x80GiB", [80 * GiB, 80 * GiB]),
        ("1x24GiB", [24 * GiB]),
        (" 2 X 16gib ", [16 * GiB, 16 * GiB]),
        ("1x80GiB,1x24GiB", [80 * GiB, 24 * GiB]),
        ("1x512MiB", [512 * 1024**2]),
        ("1x40GB", [40 * 10**9]),
    ],
)
def test_simulated_spec_parses(spec: str, expected: list[int]) -> None:
    assert parse_simulated_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "2", "x80GiB", "2x", "2x80", "2x80XB", "0x80GiB", "2x0GiB", "-1x8GiB", "65x1GiB"]
)
def test_bad_simulated_spec_is_a_clear_value_error(spec: str) -> None:
    with pytest.raises(ValueError, match=ENV_SIMULATED) as info:
        SimulatedBackend.from_spec(spec)
    assert (
        "2x80GiB" in str(info.value)
        or "above zero" in str(info.value)
        or "at most" in str(info.value)
    )


def test_simulated_readings_are_marked_deterministic_and_can_be_fed() -> None:
    first, second = SimulatedBackend.from_spec("2x80GiB"), SimulatedBackend.from_spec("2x80GiB")
    first.init()
    second.init()
    runs_a = [first.devices() for _ in range(3)]
    runs_b = [second.devices() for _ in range(3)]
    assert runs_a == runs_b
    readings = runs_a[0]
    assert [r.index for r in readings] == [0, 1]
    assert all(r.simulated and r.mem_total == 80 * GiB for r in readings)
    assert all(r.mem_used is not None and 0 < r.mem_used < 80 * GiB for r in readings)
    assert first.label == "simulated" and first.simulated

    first.set_memory(1, 7 * GiB)
    first.set_processes(0, [(1234, 3 * GiB)])
    fed = first.devices()
    assert fed[1].mem_used == 7 * GiB
    assert fed[0].processes == [(1234, 3 * GiB)]
    first.shutdown()


def test_backend_from_env() -> None:
    assert isinstance(backend_from_env({}), NvmlBackend)
    simulated = backend_from_env({ENV_SIMULATED: "2x80GiB"})
    assert isinstance(simulated, SimulatedBackend) and len(simulated.totals) == 2
    bad = backend_from_env({ENV_SIMULATED: "lots"})
    assert isinstance(bad, UnavailableBackend)
    assert bad.unavailable_reason is not None and ENV_SIMULATED in bad.unavailable_reason
    bad.init()
    assert bad.devices() == []


# ---------------------------------------------------------------------- NVML
def _driver_present() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_driver_present(), reason="this machine has an NVIDIA driver")
def test_nvml_without_a_driver_reports_unavailable() -> None:
    backend = NvmlBackend()
    backend.init()  # no exception
    assert backend.unavailable_reason == NO_DRIVER
    assert backend.devices() == []
    backend.shutdown()
    backend.shutdown()


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, NO_DRIVER),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "The NVIDIA driver is not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "No permission to use the NVIDIA driver"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML could not start (Unknown Error)"),
    ],
)
def test_init_failures_give_a_reason(code: int, reason: str) -> None:
    backend = FailingNvml(fail_init=code)
    backend.init()
    assert backend.unavailable_reason == reason
    assert backend.devices() == []
    backend.shutdown()
    assert "nvmlShutdown" not in backend.calls  # never started, nothing to shut down


@pytest.mark.parametrize(("handles", "failing_functions"), [(True, 6), (False, 1)])
def test_every_call_failing_gives_na_figures_and_never_raises(
    caplog: pytest.LogCaptureFixture, handles: bool, failing_functions: int
) -> None:
    backend = FailingNvml(count=2, handles=handles)
    backend.init()
    assert backend.unavailable_reason is None
    with caplog.at_level(logging.INFO, logger="trainer.resources.gpus"):
        readings = [backend.devices() for _ in range(3)][-1]
    assert readings == [GpuReading(0), GpuReading(1)]  # every figure None ("n/a")
    assert all(r.processes is None and r.name is None for r in readings)
    # Logged once per function and error, not once per call (without a handle, nothing else
    # is asked).
    logged = [r for r in caplog.records if r.name == "trainer.resources.gpus"]
    assert len(logged) == failing_functions
    backend.shutdown()
    assert backend.calls[-1] == "nvmlShutdown"


def test_one_failing_figure_leaves_the_others() -> None:
    def fail(*_args: Any) -> Any:
        raise nvml_error()

    fake = SimpleNamespace(
        NVMLError=pynvml.NVMLError,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"handle-{i}",
        nvmlDeviceGetName=lambda h: b"NVIDIA Test 80GB",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=5 * GiB, total=80 * GiB),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=87, memory=40),
        nvmlDeviceGetTemperature=lambda h, sensor: 61,
        nvmlDeviceGetPowerUsage=fail,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            SimpleNamespace(pid=4242, usedGpuMemory=3 * GiB),
            SimpleNamespace(pid=4343, usedGpuMemory=None),  # not available (WDDM)
        ],
    )
    backend = NvmlBackend(nvml=fake)
    backend.init()
    (reading,) = backend.devices()
    assert reading == GpuReading(
        index=0,
        name="NVIDIA Test 80GB",
        mem_used=5 * GiB,
        mem_total=80 * GiB,
        util=87.0,
        temperature=61.0,
        power_w=None,
        processes=[(4242, 3 * GiB), (4343, None)],
    )
    backend.shutdown()


def test_a_binding_mismatch_is_na_too() -> None:
    """A function missing from an old binding (AttributeError) is "n/a", not a crash."""
    fake = SimpleNamespace(
        NVMLError=pynvml.NVMLError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
    )
    backend = NvmlBackend(nvml=fake)
    backend.init()
    assert backend.devices() == [GpuReading(0)]


# ---------------------------------------------------------------------- host and sampler
def test_host_probe_reads_ram_and_survives_psutil_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = HostProbe()
    reading = probe.read()
    assert reading.mem_total and reading.mem_used and 0 < reading.mem_used <= reading.mem_total

    def broken(*_args: Any) -> Any:
        raise psutil.AccessDenied()

    monkeypatch.setattr(host_module.psutil, "virtual_memory", broken)
    monkeypatch.setattr(host_module.psutil, "cpu_percent", broken)
    reading = probe.read()
    assert (reading.cpu_percent, reading.mem_used, reading.mem_total) == (None, None, None)


def test_sampler_never_polls_faster_than_a_second() -> None:
    sampler = SystemSampler(UnavailableBackend("x"), lambda _s: None, interval_s=0.01)
    assert sampler.interval_s == MIN_INTERVAL_S
    sampler.set_interval(0.2)
    assert sampler.interval_s == MIN_INTERVAL_S
    sampler.set_interval(3)
    assert sampler.interval_s == 3.0


class RecordingBackend(SimulatedBackend):
    """Records the thread of each call; optionally fails devices() with a non-NVML error."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__([8 * GiB])
        self.fail = fail
        self.threads: dict[str, str] = {}

    def init(self) -> None:
        self.threads["init"] = threading.current_thread().name
        super().init()

    def devices(self) -> list[GpuReading]:
        if self.fail:
            raise RuntimeError("the binding exploded")
        return super().devices()

    def shutdown(self) -> None:
        self.threads["shutdown"] = threading.current_thread().name


@pytest.mark.parametrize("fail", [False, True])
def test_sampler_runs_the_backend_on_its_thread_and_never_raises(fail: bool) -> None:
    backend = RecordingBackend(fail=fail)
    got: list[SystemSnapshot] = []
    arrived = threading.Event()

    def deliver(snapshot: SystemSnapshot) -> None:
        got.append(snapshot)
        arrived.set()
        raise ValueError("a broken receiver does not stop the sampler")

    sampler = SystemSampler(backend, deliver)
    sampler.start()
    try:
        assert arrived.wait(WAIT_S)
    finally:
        assert sampler.stop()
    assert not sampler.running
    assert backend.threads == {"init": THREAD_NAME, "shutdown": THREAD_NAME}
    snapshot = got[0]
    assert snapshot.simulated and snapshot.backend == "simulated"
    assert snapshot.host.mem_total
    if fail:
        assert snapshot.gpus == [] and "the binding exploded" in (snapshot.error or "")
    else:
        assert len(snapshot.gpus) == 1 and snapshot.error is None


def test_find_owners_matches_runs_and_their_descendants() -> None:
    me, parent = os.getpid(), os.getppid()
    gpus = [GpuReading(0, processes=[(me, GiB), (2**22 + 17, None)]), GpuReading(1)]
    assert find_owners(gpus, {me: "mine"}) == {me: "mine"}
    assert find_owners(gpus, {parent: "launcher"}) == {me: "launcher"}  # a child of the run
    assert find_owners(gpus, {}) == {}


# ---------------------------------------------------------------------- a run's samples
def _row(row_id: int, wall: float, gpus: Any, cpu: Any = 50.0, rss: Any = GiB) -> SampleRow:
    return SampleRow(id=row_id, wall=wall, attempt=1, cpu_percent=cpu, rss=rss, gpus=gpus)


def test_figures_from_tolerates_odd_samples() -> None:
    figures = figures_from(
        _row(
            1,
            100.0,
            [
                {"index": 1, "torch_allocated": 5, "torch_reserved": "x", "util": None},
                "garbage",
                {"no index": True},
                {"index": 0, "mem_used": 7.0, "mem_total": 9, "util": 40},
            ],
            cpu=None,
            rss=True,
        )
    )
    assert figures.cpu_percent is None and figures.rss is None
    assert [g.index for g in figures.gpus] == [0, 1]
    assert figures.gpus[0].mem_used == 7 and figures.gpus[0].util == 40.0
    assert figures.gpus[1].torch_allocated == 5 and figures.gpus[1].torch_reserved is None


def test_history_aligns_series_when_a_gpu_appears_later() -> None:
    history = SampleHistory()
    assert history.extend(batch_from_rows([_row(1, 10.0, None)])) is True
    gpu = {"index": 0, "torch_allocated": GiB, "torch_reserved": 2 * GiB}
    history.extend(batch_from_rows([_row(2, 12.0, [gpu]), _row(3, 14.0, None)]))
    assert history.walls.tolist() == [10.0, 12.0, 14.0]
    reserved = history.series(0, "torch_reserved")
    assert len(reserved) == 3 and reserved[1] == 2 * GiB
    assert [v != v for v in reserved.tolist()] == [True, False, True]  # NaN where missing
    assert history.gpu_indexes() == [0]
    assert history.extend(batch_from_rows([])) is False
    for _ in range(300):  # grows past the first capacity
        history.extend(batch_from_rows([_row(9, 20.0, [gpu])]))
    assert len(history) == len(history.series(0, "torch_allocated")) == 303


def test_feed_and_pids_come_from_a_real_journal(make_run: MakeRun, runs_dir: Path) -> None:
    writer = make_run("live", keep_open=True)
    writer.system_sample(12.0, 3 * GiB, [{"index": 0, "torch_allocated": GiB}])
    writer.flush()
    feed = SampleFeed(runs_dir / "live")
    try:
        first = feed.poll()
        assert first.run_name == "live" and len(first) == 1
        assert first.latest is not None and first.latest.rss == 3 * GiB
        assert len(feed.poll()) == 0  # only what is new
        writer.system_sample(13.0, 3 * GiB, None)
        writer.flush()
        assert len(feed.poll()) == 1
    finally:
        feed.close()
    with pytest.raises(ValueError, match="closed"):
        feed.poll()
    pids = read_run_pids([(str(runs_dir / "live"), "live"), (str(runs_dir / "missing"), "x")])
    assert pids == {os.getpid(): "live"}
