"""The system panel, offscreen: no driver, simulated GPUs, failing NVML, a run's own figures."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.runs_model import fetch_runs
from desktop_app.system.panel import SystemPanel
from desktop_app.system.sampler import THREAD_NAME
from trainer.journal.writer import JournalWriter
from trainer.resources.gpus import ENV_SIMULATED, GiB, GpuBackend, NvmlBackend, SimulatedBackend

pytestmark = pytest.mark.gui

MakeRun = Callable[..., JournalWriter]
MakePanel = Callable[..., SystemPanel]
TIMEOUT_MS = 10_000
NO_DRIVER_TEXT = "No NVIDIA driver found: showing CPU and RAM"


class NoDriverNvml(NvmlBackend):
    """NVML as on a machine without the NVIDIA driver, whatever this machine has."""

    def _raw(self, function: str, *args: Any) -> Any:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)


class FailingNvml(NvmlBackend):
    """Starts and finds two GPUs; every other call raises NVMLError.

    With a ``gate``, each failing call first waits for it (a hung driver call).
    """

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__(nvml=pynvml)
        self.gate = gate
        self.inside = threading.Event()

    def _raw(self, function: str, *args: Any) -> Any:
        if function == "nvmlInit":
            return None
        if function == "nvmlDeviceGetCount":
            return 2
        if self.gate is not None:
            self.inside.set()
            self.gate.wait()
        raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)


@pytest.fixture
def io() -> Iterator[BackgroundIO]:
    worker = BackgroundIO()
    yield worker
    worker.close()


@pytest.fixture
def make_panel(qtbot: QtBot, io: BackgroundIO) -> Iterator[MakePanel]:
    """``make_panel(backend)``: a shown panel; shut down (after the IO worker) at teardown."""
    panels: list[SystemPanel] = []

    def make(backend: GpuBackend | None = None) -> SystemPanel:
        panel = SystemPanel(io, backend)
        qtbot.addWidget(panel)
        panel.resize(520, 720)
        panel.show()
        panels.append(panel)
        return panel

    yield make
    io.close()
    for panel in panels:
        panel.shutdown()
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def wait_for(qtbot: QtBot, condition: Callable[[], object]) -> None:
    qtbot.waitUntil(lambda: bool(condition()), timeout=TIMEOUT_MS)


def test_no_driver_says_so_and_shows_cpu_and_ram(qtbot: QtBot, make_panel: MakePanel) -> None:
    panel = make_panel(NoDriverNvml())
    wait_for(qtbot, lambda: panel.message_text() == NO_DRIVER_TEXT)
    assert panel.gpu_cards == []
    assert panel.cpu_gauge.isVisible() and panel.ram_gauge.isVisible()
    assert panel.ram_gauge.text().endswith("%)") and "GiB" in panel.ram_gauge.text()
    assert not panel.simulated_banner.isVisible()
    # CPU % needs a second reading (psutil's first one is always 0.0).
    wait_for(qtbot, lambda: "CPUs" in panel.cpu_gauge.text())
    assert panel.cpu_gauge.fraction() is not None


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="an NVIDIA driver is loaded")
def test_the_real_nvml_backend_on_this_machine(qtbot: QtBot, make_panel: MakePanel) -> None:
    panel = make_panel(NvmlBackend())
    wait_for(qtbot, lambda: panel.message_text() == NO_DRIVER_TEXT)


def test_simulated_gpus_show_two_gauges_marked_simulated(
    qtbot: QtBot, make_panel: MakePanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SIMULATED, "2x80GiB")
    panel = make_panel()  # the default backend reads the variable
    assert isinstance(panel.backend, SimulatedBackend)
    wait_for(qtbot, lambda: len(panel.gpu_cards) == 2)
    assert panel.message_text() == ""
    assert panel.simulated_banner.isVisible()
    assert "SIMULATED" in panel.simulated_banner.text()
    assert f"{ENV_SIMULATED}=2x80GiB" in panel.simulated_banner.text()
    for index, card in enumerate(panel.gpu_cards):
        assert card.simulated_tag.isVisible()
        assert card.title.text() == f"GPU {index} · Simulated GPU 80 GiB"
        assert " / 80.0 GiB (" in card.memory.text()
        assert card.memory.fraction() is not None
        assert card.util.text().endswith(" %")
        assert "°C" in card.details.text() and " W" in card.details.text()
        assert card.processes.text() == "No processes"


def test_failing_nvml_shows_na_and_the_app_stays_responsive(
    qtbot: QtBot, make_panel: MakePanel
) -> None:
    gate = threading.Event()
    backend = FailingNvml(gate)
    panel = make_panel(backend)
    try:
        # The sampler is stuck inside a "hung" NVML call; the GUI thread is not.
        wait_for(qtbot, backend.inside.is_set)
        fired: list[bool] = []
        QTimer.singleShot(0, lambda: fired.append(True))
        qtbot.waitUntil(lambda: bool(fired), timeout=1000)
        panel.set_selected_run(None)
        assert panel.last_snapshot is None
    finally:
        gate.set()
    wait_for(qtbot, lambda: len(panel.gpu_cards) == 2)
    for card in panel.gpu_cards:
        assert card.title.text().endswith("name n/a")
        assert card.memory.text() == "n/a" and card.memory.fraction() is None
        assert card.util.text() == "n/a"
        assert card.details.text() == "Temperature n/a · Power n/a"
        assert card.processes.text() == "Processes: n/a"
    assert panel.message_text() == ""


def test_a_backend_that_raises_shows_the_failure(qtbot: QtBot, make_panel: MakePanel) -> None:
    class Exploding(SimulatedBackend):
        def devices(self) -> list[Any]:
            raise RuntimeError("driver went away")

    panel = make_panel(Exploding([8 * GiB]))
    wait_for(qtbot, lambda: "driver went away" in panel.message_text())
    assert panel.message_text().startswith("GPU readings failed")
    assert "GiB" in panel.ram_gauge.text()


def test_gpu_processes_are_matched_to_our_runs(
    qtbot: QtBot, make_panel: MakePanel, make_run: MakeRun, runs_dir: Path
) -> None:
    make_run("live-gpu", keep_open=True)  # its journal's pid is this process
    backend = SimulatedBackend.from_spec("2x80GiB")
    stranger = 2**22 + 11
    backend.set_processes(0, [(os.getpid(), 3 * GiB), (stranger, None)])
    backend.set_processes(1, [(stranger, GiB)])
    panel = make_panel(backend)
    panel.set_runs(fetch_runs(runs_dir))
    wait_for(qtbot, lambda: len(panel.gpu_cards) == 2)
    cards = panel.gpu_cards
    wait_for(qtbot, lambda: cards[0].processes.text().startswith("Runs: live-gpu"))
    assert cards[0].processes.text() == "Runs: live-gpu (3.0 GiB) · 1 other process"
    assert cards[1].processes.text() == "1 process, none of our runs"

    panel.set_runs([])
    panel.set_run_pids({stranger: "given"})
    wait_for(qtbot, lambda: cards[1].processes.text() == "Runs: given (1.0 GiB)")


def _gpu(reserved: int, allocated: int) -> dict[str, Any]:
    return {
        "index": 0,
        "mem_used": 14 * GiB,
        "mem_total": 80 * GiB,
        "torch_allocated": allocated,
        "torch_reserved": reserved,
        "util": 87.0,
    }


def test_run_figures_come_from_the_journal_samples(
    qtbot: QtBot, make_panel: MakePanel, make_run: MakeRun, runs_dir: Path
) -> None:
    writer = make_run("gpu-run", keep_open=True)
    writer.system_sample(42.0, 2 * GiB, [_gpu(12 * GiB, 10 * GiB)])
    writer.flush()
    panel = make_panel(SimulatedBackend.from_spec("1x80GiB"))
    panel.set_selected_run(runs_dir / "gpu-run")
    view = panel.run_view
    wait_for(qtbot, lambda: view.process.text().startswith("CPU 42 %"))
    assert view.title.text() == "Run gpu-run"
    assert "RSS 2.0 GiB" in view.process.text()
    assert view.gpus.toolTip() == (
        "GPU 0: torch allocated 10.0 GiB · reserved 12.0 GiB · "
        "device 14.0 / 80.0 GiB (18 %) · util 87 %"
    )
    table = view.gpus.text()
    for cell in ("10.0 GiB", "12.0 GiB", "14.0 / 80.0 GiB (18 %)", "87 %"):
        assert f"14px'>{cell}</td>" in table

    before = time.time()
    writer.system_sample(43.0, 2 * GiB, [_gpu(13 * GiB, 11 * GiB)])
    writer.flush()
    reserved = (0, "torch_reserved")
    wait_for(qtbot, lambda: points(panel, reserved) == 2)
    curve = view.curves[reserved]
    assert curve.yData is not None and curve.yData.tolist() == [12.0, 13.0]  # GiB
    assert curve.xData is not None and curve.xData[-1] >= before - 1  # x is wall time
    assert set(view.curves) == {(0, "torch_reserved"), (0, "torch_allocated"), (0, "mem_used")}

    panel.set_selected_run(None)
    wait_for(qtbot, lambda: view.title.text() == "No run selected")
    wait_for(qtbot, lambda: points(panel, reserved) == 0)


def points(panel: SystemPanel, key: tuple[int, str]) -> int:
    """How many points the chart's curve for ``key`` draws (0 when it has none)."""
    curve = panel.run_view.curves.get(key)
    return 0 if curve is None or curve.xData is None else len(curve.xData)


def test_run_without_samples_or_gpus(
    qtbot: QtBot, make_panel: MakePanel, make_run: MakeRun, runs_dir: Path
) -> None:
    make_run("quiet")
    cpu_only = make_run("cpu-only", keep_open=True)
    cpu_only.system_sample(5.0, GiB, None)
    cpu_only.flush()
    panel = make_panel(NoDriverNvml())
    view = panel.run_view
    panel.set_selected_run(runs_dir / "quiet")
    wait_for(qtbot, lambda: view.process.text().startswith("No system samples yet"))
    panel.set_selected_run(runs_dir / "cpu-only")
    wait_for(qtbot, lambda: view.gpus.text() == "No GPU in use by this run")
    assert view.process.text().startswith("CPU 5 % · RSS 1.0 GiB")


def test_an_unreadable_journal_is_reported(
    qtbot: QtBot, make_panel: MakePanel, runs_dir: Path
) -> None:
    folder = runs_dir / "broken"
    folder.mkdir()
    (folder / "journal.sqlite").write_bytes(b"this is not a database" * 100)
    panel = make_panel(NoDriverNvml())
    panel.set_selected_run(folder)
    wait_for(qtbot, lambda: "Cannot read its journal" in panel.run_view.process.text())
    assert panel.selected_run is None
