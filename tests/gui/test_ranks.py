"""The ranks of a run on several processes in the Health dock: ``ranks.json`` read with the
journal off the GUI thread, each rank's node, host, device, pid, step and beat age, and the
elastic restart count; then a real two-process torchrun run launched by the supervisor."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.background import BackgroundIO
from desktop_app.health.model import HealthModel, HealthReaders
from desktop_app.health.panel import HealthPanel
from desktop_app.health.ranks import read_ranks
from desktop_app.runs_ctl.spec import LaunchSpec
from desktop_app.runs_ctl.supervisor import Supervisor
from tests.gui.conftest import MakeRun
from tests.gui.supervisor_recorder import end_supervision, record

pytestmark = pytest.mark.gui

TIMEOUT_MS = 15_000
START_MS = 120_000  # torchrun and two ranks import torch on a shared 2-core machine


def beat(
    rank: int, *, step: int, wall: float, restart: int = 0, node: int = 0
) -> dict[str, object]:
    return {"rank": rank, "world": 2, "local_rank": rank, "node": node, "host": f"host-{node}",
            "pid": 4000 + rank, "device": f"cuda:{rank}", "step": step, "restart": restart,
            "wall": wall}  # fmt: skip


def write_ranks(folder: Path, restart: int, *beats: dict[str, object]) -> None:
    tmp = folder / ".ranks.json.tmp"
    tmp.write_text(json.dumps({"restart": restart, "ranks": list(beats)}))
    tmp.replace(folder / "ranks.json")  # atomic, as the trainer writes it


@pytest.fixture
def panel(qtbot: QtBot, qapp: object) -> Iterator[HealthPanel]:
    io = BackgroundIO()
    tasks = BackgroundIO(name="traindesk-tasks", workers=2)
    widget = HealthPanel(io, tasks, model=HealthModel(heartbeat_timeout=5.0), interval_ms=100)
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    io.close()
    tasks.close()
    widget.shutdown()


def test_read_ranks(tmp_path: Path) -> None:
    assert read_ranks(tmp_path) is None  # a run on one process
    now = time.time()
    write_ranks(tmp_path, 1, beat(1, step=7, wall=now - 2), beat(0, step=9, wall=now))
    ranks = read_ranks(tmp_path)
    assert ranks is not None and not ranks.error
    assert [b.rank for b in ranks.ranks] == [0, 1] and ranks.restart == 1
    assert (ranks.world, ranks.nodes) == (2, 1)
    first = ranks.ranks[1]
    assert (first.host, first.device, first.pid, first.step) == ("host-0", "cuda:1", 4001, 7)
    age = first.age(now)
    assert age is not None and 1.9 < age < 2.1
    (tmp_path / "ranks.json").write_text('{"ranks": [{"rank": ')
    broken = read_ranks(tmp_path)
    assert broken is not None and "not understood" in broken.error and not broken.ranks


def test_the_model_keeps_the_ranks_and_their_ages(make_run: MakeRun, runs_dir: Path) -> None:
    live = make_run("ddp", losses=[1.0, 0.5], keep_open=True)
    make_run("done", losses=[1.0])
    now = time.time()
    write_ranks(runs_dir / "ddp", 0, beat(0, step=1, wall=now - 1), beat(1, step=1, wall=now - 3))
    write_ranks(runs_dir / "done", 2, beat(0, step=1, wall=now - 100))
    model = HealthModel()
    readers = HealthReaders()
    try:
        folders = [str(runs_dir / "ddp"), str(runs_dir / "done")]
        model.set_runs([(folders[0], "ddp"), (folders[1], "done")])
        model.apply(readers.read(folders, model.derive)[0])
    finally:
        readers.close()
        live.close()
    running, ended = model.rows
    assert running.ranks is not None and [b.rank for b in running.ranks.ranks] == [0, 1]
    ages = [a for a in running.rank_ages if a is not None]
    assert len(ages) == 2 and 0.9 < ages[0] < 2.5 and 2.9 < ages[1] < 4.5
    assert ended.ranks is not None and ended.ranks.restart == 2
    assert ended.rank_ages == ()  # an ended run's beats are history


def test_the_health_dock_shows_the_ranks(
    qtbot: QtBot, panel: HealthPanel, make_run: MakeRun, runs_dir: Path
) -> None:
    single = make_run("single", losses=[1.0], keep_open=True)
    live = make_run("ddp", losses=[1.0, 0.5], keep_open=True)
    folder = runs_dir / "ddp"
    try:
        panel.set_runs([(str(runs_dir / "single"), "single"), (str(folder), "ddp")])
        qtbot.waitUntil(lambda: len(panel.model.rows) == 2 and panel.model.rows[1].step > 0,
                        timeout=TIMEOUT_MS)  # fmt: skip
        assert not panel.ranks.isVisible()  # no run with ranks yet
        now = time.time()
        write_ranks(folder, 1, beat(0, step=12, wall=now), beat(1, step=11, wall=now - 1.5))
        table = panel.ranks.table
        qtbot.waitUntil(lambda: table.rowCount() == 2, timeout=TIMEOUT_MS)
        assert panel.ranks.isVisible()
        cells = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(2)]
        assert cells[0][:7] == ["ddp", "0", "0", "host-0", "cuda:0", "4000", "12"]
        assert cells[1][:7] == ["ddp", "1", "0", "host-0", "cuda:1", "4001", "11"]
        assert all(c[7].endswith(" s") for c in cells)  # the beat's age
        assert "2 of 2 ranks on 1 node; elastic restarts: 1" in panel.ranks.summary.text()

        # The next beats, after a second elastic restart, on two nodes.
        write_ranks(folder, 2, beat(0, step=30, wall=time.time(), restart=2),
                    beat(1, step=29, wall=time.time(), restart=2, node=1))  # fmt: skip
        qtbot.waitUntil(lambda: "elastic restarts: 2" in panel.ranks.summary.text(),
                        timeout=TIMEOUT_MS)  # fmt: skip
        qtbot.waitUntil(lambda: table.item(1, 6).text() == "29", timeout=TIMEOUT_MS)
        assert table.item(1, 2).text() == "1" and table.item(1, 3).text() == "host-1"
        assert "on 2 nodes" in panel.ranks.summary.text()
    finally:
        single.close()
        live.close()


def test_a_real_two_process_run_shows_its_ranks(
    qtbot: QtBot, panel: HealthPanel, runs_dir: Path
) -> None:
    supervisor = Supervisor(runs_dir)
    rec = record(supervisor)
    sets = ["threads=1", "n_points=800", "batch_size=64", "log_every=5", "max_steps=100000"]
    spec = LaunchSpec("spirals", sets, name="ddp", device="cpu", nproc_per_node=2)
    try:
        folder = supervisor.start(spec)
        assert folder is not None
        panel.set_runs([(folder, "ddp")])
        table = panel.ranks.table

        def both_live() -> bool:
            rows = panel.model.rows
            return (
                table.rowCount() == 2
                and bool(rows)
                and len(rows[0].rank_ages) == 2
                and all(b.step > 0 for b in rows[0].ranks.ranks)  # type: ignore[union-attr]
            )

        qtbot.waitUntil(both_live, timeout=START_MS)
        ranks = panel.model.rows[0].ranks
        assert ranks is not None and ranks.restart == 0 and ranks.world == 2
        assert [b.rank for b in ranks.ranks] == [0, 1]
        assert all(b.device == "cpu" and b.pid and b.host for b in ranks.ranks)
        assert table.item(0, 4).text() == "cpu"
        assert "elastic restarts: 0" in panel.ranks.summary.text()
        supervisor.stop(folder)  # agreed by both ranks, with a checkpoint
        qtbot.waitUntil(lambda: bool(rec.ended), timeout=START_MS)
    finally:
        end_supervision(qtbot, supervisor)
    assert rec.ended[0][:2] == (folder, "stopped"), rec.text(folder)
    qtbot.waitUntil(lambda: table.item(0, 7).text() == "ended", timeout=TIMEOUT_MS)
