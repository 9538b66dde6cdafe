"""The New Run dialog's GPU picker: GPUs and holders read off the GUI thread, the choices
forwarded as ``trainer run`` options, a CPU-only machine."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.runs_ctl.gpu_model import GpuInventory, ResourceChoice, read_gpu_inventory
from desktop_app.runs_ctl.new_run_dialog import NewRunDialog
from desktop_app.runs_ctl.spec import LaunchSpec, run_args, size_arg
from trainer.cli.main import build_parser
from trainer.cli.resource_options import resources_from_args
from trainer.resources.gpus import ENV_SIMULATED, NO_DRIVER, GpuBackend, UnavailableBackend
from trainer.resources.sizes import GiB
from trainer.resources.store import GpuRequest, LeaseStore

pytestmark = pytest.mark.gui

TIMEOUT_MS = 10_000


@pytest.fixture
def leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "leases.sqlite"
    monkeypatch.setenv("TRAINDESK_LEASES", str(path))
    return path


@pytest.fixture
def io(qapp: object) -> BackgroundIO:
    worker = BackgroundIO(name="traindesk-tasks", workers=2)
    yield worker
    worker.close()


def open_dialog(
    qtbot: QtBot, runs_dir: Path, io: BackgroundIO, backend: GpuBackend | None = None
) -> NewRunDialog:
    threads: list[str] = []

    def read() -> GpuInventory:
        threads.append(threading.current_thread().name)
        return read_gpu_inventory(backend)

    dialog = NewRunDialog(runs_dir, io=io, read_gpus=read)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.resources.inventory is not None, timeout=TIMEOUT_MS)
    assert threads and all(name.startswith("traindesk-tasks") for name in threads)
    return dialog


def test_the_trainer_reads_back_every_resource_option(runs_dir: Path) -> None:
    spec = LaunchSpec(
        "spirals",
        name="r",
        runs_dir=runs_dir,
        gpus="device=0,2",
        gpu_mem=20 * GiB,
        share_gpu=True,
        gpu_policy="pack",
        priority=5,
        max_rss=3 * GiB + 512 * 2**20,
        cpu_threads=4,
        disk_floor=1000,
    )
    args = run_args(spec)
    assert {
        "--gpus=device=0,2",
        "--gpu-mem=20GiB",
        "--share-gpu",
        "--gpu-policy=pack",
        "--priority=5",
        "--max-rss=3584MiB",
        "--cpu-threads=4",
        "--disk-floor=1000B",
    } <= set(args)
    parsed = build_parser().parse_args(args)
    resources = resources_from_args(parsed)
    assert resources.gpus == GpuRequest(ids=(0, 2))
    assert resources.share and resources.policy == "pack" and resources.priority == 5
    assert resources.limits.gpu_mem == 20 * GiB and resources.limits.max_rss == 3584 * 2**20
    assert resources.limits.cpu_threads == 4 and resources.limits.disk_floor == 1000
    assert not any(
        a.startswith(("--gpu", "--share", "--prio", "--max-rss", "--cpu", "--disk"))
        for a in run_args(LaunchSpec("spirals"))
    )
    assert size_arg(GiB) == "1GiB" and size_arg(1536) == "1536B"


def test_choice_checks_itself_against_the_inventory() -> None:
    inv = GpuInventory(rows=(), unavailable_reason="No NVIDIA driver found")
    assert inv.summary().startswith("no GPU (CPU only)")
    assert "no GPU" in ResourceChoice(mode="any").problems(inv)["gpus"]
    assert ResourceChoice(mode="auto").problems(inv) == {}
    bad = ResourceChoice(gpu_mem="lots", max_rss="0", disk_floor="x", cpu_threads=-1)
    assert set(bad.problems(None)) == {"gpu_mem", "max_rss", "disk_floor", "cpu_threads"}
    fields = ResourceChoice(mode="none", gpu_mem="2GiB", priority=3, max_rss="1GiB").spec_fields()
    assert fields["gpus"] == "none" and fields["gpu_mem"] is None and fields["priority"] is None
    assert fields["max_rss"] == GiB
    assert ResourceChoice(disk_floor="512MiB").spec_fields()["disk_floor"] is None  # default


def test_picker_lists_gpus_holders_and_forwards_the_choice(
    qtbot: QtBot,
    runs_dir: Path,
    leases: Path,
    io: BackgroundIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_SIMULATED, "2x24GiB")
    holder = str(runs_dir / "holder-run")
    with LeaseStore(leases) as store:
        from trainer.resources.acquire import read_inventory

        grant = store.try_acquire(
            holder,
            GpuRequest(ids=(1,), mem_budget=4 * GiB),
            read_inventory().devices,
            simulated=True,
        )
        assert grant.ok
    dialog = open_dialog(qtbot, runs_dir, io)
    picker = dialog.resources
    labels = [picker.gpu_list.item(i).text() for i in range(picker.gpu_list.count())]
    assert picker.status_label.text() == "2 simulated GPUs"
    assert "GPU 0" in labels[0] and "(simulated)" in labels[0] and "24 GiB free" in labels[0]
    assert labels[0].endswith("free")
    assert "20 GiB free of 24 GiB" in labels[1] and "held by holder-run" in labels[1]
    devices = [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())]
    assert devices == ["auto", "cpu", "cuda", "cuda:0", "cuda:1"]

    assert picker.mode_combo.currentData() == "auto" and not picker.gpu_list.isEnabled()
    picker.set_mode("count")
    picker.count_spin.setValue(2)
    assert dialog.launch_button.isEnabled()
    picker.set_mode("devices")
    assert "tick" in dialog.errors()["gpus"] and not dialog.launch_button.isEnabled()
    picker.gpu_list.item(1).setCheckState(Qt.CheckState.Checked)
    picker.gpu_mem_edit.setText("30GiB")
    assert "more than any GPU" in dialog.errors()["gpu_mem"]
    picker.gpu_mem_edit.setText("8GiB")
    picker.share_check.setChecked(True)
    picker.policy_combo.setCurrentIndex(picker.policy_combo.findData("spread"))
    picker.priority_spin.setValue(2)
    picker.max_rss_edit.setText("6GiB")
    picker.cpu_threads_spin.setValue(2)
    picker.disk_floor_edit.setText("1GiB")
    dialog.name_edit.setText("picked")
    with qtbot.waitSignal(dialog.accepted_spec) as blocker:
        dialog.launch_button.click()
    spec = blocker.args[0]
    assert (spec.gpus, spec.gpu_mem, spec.share_gpu, spec.gpu_policy, spec.priority) == (
        "device=1",
        8 * GiB,
        True,
        "spread",
        2,
    )
    assert (spec.max_rss, spec.cpu_threads, spec.disk_floor) == (6 * GiB, 2, GiB)
    assert "--gpus=device=1" in run_args(spec)


def test_cpu_only_machine_disables_the_picker(
    qtbot: QtBot, runs_dir: Path, leases: Path, io: BackgroundIO
) -> None:
    dialog = open_dialog(qtbot, runs_dir, io, UnavailableBackend(NO_DRIVER))
    picker = dialog.resources
    assert picker.status_label.text() == f"no GPU (CPU only): {NO_DRIVER}"
    assert not picker.mode_combo.isEnabled() and not picker.gpu_mem_edit.isEnabled()
    assert not picker.gpu_list.isVisible()
    assert picker.max_rss_edit.isEnabled()  # limits still apply on the CPU
    spec = dialog.launch_spec()
    assert spec is not None and spec.gpus is None
    devices = [dialog.device_combo.itemData(i) for i in range(dialog.device_combo.count())]
    assert devices == ["auto", "cpu"]


def test_none_with_a_cuda_device_is_refused(
    qtbot: QtBot,
    runs_dir: Path,
    leases: Path,
    io: BackgroundIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_SIMULATED, "1x8GiB")
    dialog = open_dialog(qtbot, runs_dir, io)
    dialog.select_recipe("spirals")
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cuda:0"))
    dialog.resources.set_mode("none")
    assert "needs a GPU" in dialog.errors()["device"]
    assert not dialog.launch_button.isEnabled()
    dialog.resources.set_mode("any")
    assert dialog.launch_button.isEnabled()
