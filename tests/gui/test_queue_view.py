"""The GPU queue in the app: read from the machine's lease store (made by other processes),
shown in a dock and in the runs table, reordered and cancelled, and still there after the app
restarts. The last test queues a real trainer behind another and cancels it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.gpu_queue.model import QueueModel, QueueRow, rank_in_priority
from desktop_app.main_window import MainWindow
from desktop_app.runs_table import COLUMNS, REASON_COLUMN, STATUS_COLUMN
from tests.helpers import NOTORCH, ROOT, spawn, trainer_env
from trainer.resources.gpus import ENV_SIMULATED
from trainer.resources.store import LeaseStore
from trainer.runs import summarize

pytestmark = pytest.mark.gui

TIMEOUT_MS = 15_000
START_MS = 120_000  # a trainer imports torch first, on a shared 2-core machine

#: Queues runs in the lease store as this (live) process, prints their ids, and waits until
#: its stdin closes: the entries of a process that is gone are reclaimed.
HOLDER = r"""
import sys
from pathlib import Path
from trainer.resources.store import GpuRequest, LeaseStore
store = LeaseStore(Path(sys.argv[1]))
ids = [store.enqueue(run, GpuRequest(count=1, mem_budget=8 * 2**30),
                     reason="waiting for 1 GPU; GPU 0 held by run big")
       for run in sys.argv[2:]]
store.close()
print(" ".join(map(str, ids)), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return Path(os.environ["TRAINDESK_LEASES"])  # tests/gui/conftest.py: in tmp_path


@pytest.fixture
def queued(store_path: Path, runs_dir: Path) -> Iterator[Callable[..., list[int]]]:
    """``queued("a", "b")``: queue run folders a and b from another process; their ids."""
    procs: list[subprocess.Popen[str]] = []

    def make(*names: str) -> list[int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(store_path), *(str(runs_dir / n) for n in names)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=trainer_env(), cwd=ROOT,
        )  # fmt: skip
        procs.append(proc)
        assert proc.stdout is not None
        return [int(x) for x in proc.stdout.readline().split()]

    yield make
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()


def open_window(qtbot: QtBot, runs_dir: Path) -> MainWindow:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    win.show_dock("queue")
    return win


def queue_names(win: MainWindow) -> list[str]:
    return [r.name for r in win.queue.model.rows]


def close(win: MainWindow) -> None:
    win.close()
    assert win._shut_down


def test_model_notifies_only_on_change() -> None:
    model = QueueModel()
    calls: list[int] = []
    model.add_listener(lambda: calls.append(1))
    row = QueueRow(1, "/r/a", "1 GPU", 0, 1, "waiting", 10.0, 99)
    assert model.set_rows([row]) and model.set_rows([row]) is False
    assert model.set_error("locked") and model.set_error("locked") is False
    assert model.set_rows([row]) and model.error is None
    assert len(calls) == 3
    rows = [row, QueueRow(2, "/r/b", "1 GPU", 0, 2, "", 11.0, 99),
            QueueRow(3, "/r/c", "1 GPU", 5, 3, "", 12.0, 99)]  # fmt: skip
    assert rank_in_priority(rows, 2) == (2, 2) and rank_in_priority(rows, 3) == (1, 1)


def test_queue_from_another_process_survives_an_app_restart(
    qtbot: QtBot, runs_dir: Path, queued: Callable[..., list[int]]
) -> None:
    ids = queued("first", "second")
    win = open_window(qtbot, runs_dir)
    qtbot.waitUntil(lambda: queue_names(win) == ["first", "second"], timeout=TIMEOUT_MS)
    table = win.queue.table
    assert table.item(0, 2).text() == "1 GPU with 8 GiB free"
    assert table.item(1, 5).text() == "waiting for 1 GPU; GPU 0 held by run big"
    assert "2 runs waiting" in win.queue.summary.text()
    assert [r.id for r in win.queue.model.rows] == ids
    close(win)

    again = open_window(qtbot, runs_dir)  # a new window (as after a restart) reads it again
    qtbot.waitUntil(lambda: queue_names(again) == ["first", "second"], timeout=TIMEOUT_MS)
    close(again)


def test_reorder_priority_and_cancel(
    qtbot: QtBot, runs_dir: Path, store_path: Path, queued: Callable[..., list[int]]
) -> None:
    a, b, c = queued("a", "b", "c")
    win = open_window(qtbot, runs_dir)
    view = win.queue
    qtbot.waitUntil(lambda: queue_names(win) == ["a", "b", "c"], timeout=TIMEOUT_MS)
    assert view.select(c)
    assert view.up_button.isEnabled() and not view.down_button.isEnabled()
    view.up_button.click()
    qtbot.waitUntil(lambda: queue_names(win) == ["a", "c", "b"], timeout=TIMEOUT_MS)
    assert view.selected_id() == c  # the selection follows the entry
    assert view.select(b)
    view.priority_spin.setValue(3)
    view.priority_button.click()
    qtbot.waitUntil(lambda: queue_names(win) == ["b", "a", "c"], timeout=TIMEOUT_MS)
    assert "b now has priority 3" in win.statusBar().currentMessage()
    assert view.select(a)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: queue_names(win) == ["b", "c"], timeout=TIMEOUT_MS)
    with LeaseStore(store_path) as store:
        assert [e.id for e in store.queue()] == [b, c]
    view.cancel_run(a)  # already gone: said so, nothing else happens
    qtbot.waitUntil(lambda: "no longer in the queue" in win.error_label.text(), timeout=TIMEOUT_MS)
    close(win)


def test_a_real_run_queues_behind_another_and_is_cancelled(
    qtbot: QtBot, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_SIMULATED, "1x24GiB")
    common = ["--runs-dir", str(runs_dir), "--set", "max_steps=100000", "--set",
              "step_sleep=0.01", "--quiet"]  # fmt: skip
    # Runs that only hold the GPU and wait for it: the torch-free loop (tests.helpers).
    first = spawn("run", str(NOTORCH), "--name", "first", "--gpus", "1", *common)
    second = None
    win = open_window(qtbot, runs_dir)
    try:
        qtbot.waitUntil(lambda: summarize(runs_dir / "first").status == "running"
                        if (runs_dir / "first").exists() else False, timeout=START_MS)  # fmt: skip
        second = spawn("run", str(NOTORCH), "--name", "second", "--gpus", "1", *common)
        qtbot.waitUntil(lambda: queue_names(win) == ["second"], timeout=START_MS)
        model = win.table_model

        def row_of(name: str) -> int:
            names = [str(model.index(r, 0).data()) for r in range(model.rowCount())]
            return names.index(name) if name in names else -1

        def reason() -> str:
            row = row_of("second")
            return "" if row < 0 else str(model.index(row, REASON_COLUMN).data())

        qtbot.waitUntil(lambda: "GPU 0 held by run first" in reason(), timeout=TIMEOUT_MS)
        status = model.index(row_of("second"), STATUS_COLUMN)
        assert status.data() == "queued"  # the drawn icon shows the state
        assert "held by run first" in status.data(Qt.ItemDataRole.ToolTipRole)
        assert COLUMNS[REASON_COLUMN] == "Reason"

        view = win.queue
        assert view.select(view.model.rows[0].id)
        view.cancel_button.click()
        assert second.wait(timeout=60) == 0  # the waiting trainer noticed, and stopped
        qtbot.waitUntil(lambda: queue_names(win) == [], timeout=TIMEOUT_MS)
        after = summarize(runs_dir / "second")
        assert after.status == "stopped" and "cancelled" in (after.exit_reason or "")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            if proc is not None:
                proc.communicate(timeout=60)
        close(win)
