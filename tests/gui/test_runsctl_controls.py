"""Run actions: enabled per status, delete only confirmed and never live, export, the close
prompt. Control messages and restarts go to real run folders and a real trainer."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.actions import RunController
from desktop_app.runs_ctl.close_prompt import (
    CloseChoice,
    ClosePrompt,
    ask_close,
    close_with_children,
)
from desktop_app.runs_ctl.controls import (
    Action,
    ActionRefused,
    delete_run,
    enabled_actions,
    export_csv,
)
from desktop_app.runs_ctl.export_dialog import ExportDialog
from desktop_app.runs_ctl.new_run_dialog import NewRunDialog
from desktop_app.runs_ctl.supervisor import Supervisor
from trainer import control
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths
from trainer.runs import RunSummary, summarize

pytestmark = pytest.mark.gui

MakeRun = Callable[..., JournalWriter]  # the make_run fixture (conftest.py)
A = Action


# ---------------------------------------------------------------------- policy
@pytest.mark.parametrize(
    ("status", "child", "expected"),
    [
        (None, False, {A.NEW}),
        ("running", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP, A.PAUSE,
                            A.CHECKPOINT, A.EXTEND}),
        ("paused", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP, A.RESUME, A.EXTEND}),
        ("starting", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP}),
        ("stopping", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV}),
        ("unresponsive", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP}),
        ("finished", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.DELETE}),
        ("stopped", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.RESTART, A.DELETE}),
        ("crashed", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.RESTART, A.DELETE}),
        ("failed", False, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.RESTART, A.DELETE}),
        ("unreadable", False, {A.NEW, A.OPEN_FOLDER, A.DELETE}),
        # Our child whose trainer has not written "stopped" yet: never deleted or restarted.
        ("crashed", True, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP}),
        (None, True, {A.NEW, A.OPEN_FOLDER, A.STOP}),
        ("stopping", True, {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP}),  # Stop escalates
    ],
)  # fmt: skip
def test_enabled_actions_follow_the_status(
    status: str | None, child: bool, expected: set[Action]
) -> None:
    assert enabled_actions(status, child=child) == expected


def test_delete_refuses_live_runs_and_needs_confirmation(make_run: MakeRun, runs_dir: Path) -> None:
    make_run("live", losses=[1.0], keep_open=True)
    with pytest.raises(ActionRefused, match="running"):
        delete_run(runs_dir / "live", confirmed=True)
    make_run("done", losses=[1.0])
    with pytest.raises(ActionRefused, match="confirmation"):
        delete_run(runs_dir / "done", confirmed=False)
    with pytest.raises(ActionRefused, match="stop it"):
        delete_run(runs_dir / "done", confirmed=True, child=True)
    assert (runs_dir / "done").is_dir()
    delete_run(runs_dir / "done", confirmed=True)
    assert not (runs_dir / "done").exists()
    (runs_dir / "not-a-run").mkdir()
    with pytest.raises(ActionRefused, match="not a run folder"):
        delete_run(runs_dir / "not-a-run", confirmed=True)


def test_export_csv_writes_the_chosen_keys(
    make_run: MakeRun, runs_dir: Path, tmp_path: Path
) -> None:
    writer = make_run("done", losses=[], keep_open=True)
    for step in range(5):
        writer.log_scalars({"train/loss": 1.0 / (step + 1), "val/acc": step / 10}, step)
    writer.set_status("finished", exit_reason="finished", step=4)
    writer.close()
    out = tmp_path / "out.csv"
    assert export_csv(runs_dir / "done", out, ["val/acc", "nope"]) == 5
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["key", "step", "value", "wall_time", "attempt"]
    assert {r[0] for r in rows[1:]} == {"val/acc"}
    assert [r[1] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert export_csv(runs_dir / "done", out) == 10


# ---------------------------------------------------------------------- the controller
class Harness:
    """A controller over a real supervisor, with a settable selection."""

    def __init__(self, runs_dir: Path) -> None:
        # Not qtbot.addWidget: qtbot deletes its widgets (and so the supervisor) before
        # fixture teardown, which must stop the children first.
        self.window = QWidget()
        self.supervisor = Supervisor(runs_dir, self.window)
        self.selected: RunSummary | None = None
        self.opened: list[QUrl] = []
        self.errors: list[str] = []
        self.messages: list[str] = []
        self.controller = RunController(
            self.supervisor,
            self.window,
            selected=lambda: self.selected,
            open_url=self._open,
        )
        self.controller.error.connect(self.errors.append)
        self.controller.message.connect(self.messages.append)

    def _open(self, url: QUrl) -> bool:
        self.opened.append(url)
        return True

    def select(self, folder: Path | None) -> None:
        self.selected = None if folder is None else summarize(folder)
        self.controller.update()

    def enabled(self) -> set[Action]:
        return {a for a, q in self.controller.actions.items() if q.isEnabled()}


@pytest.fixture
def harness(qtbot: QtBot, runs_dir: Path) -> Iterator[Harness]:
    h = Harness(runs_dir)
    yield h
    for folder in h.supervisor.running():
        h.supervisor.stop(folder)
    qtbot.waitUntil(lambda: not h.supervisor.running(), timeout=60_000)
    h.window.close()
    h.window.deleteLater()


def test_actions_have_shortcuts_and_follow_the_selection(
    harness: Harness, make_run: MakeRun, runs_dir: Path
) -> None:
    actions = harness.controller.actions
    shortcuts = {a: actions[a].shortcut() for a in actions}
    assert shortcuts[A.NEW] == QKeySequence("Ctrl+N")
    assert shortcuts[A.STOP] == QKeySequence("Ctrl+.")
    assert shortcuts[A.PAUSE] == shortcuts[A.RESUME] == QKeySequence("Space")
    assert shortcuts[A.CHECKPOINT] == QKeySequence("Ctrl+S")
    assert shortcuts[A.EXPORT_CSV] == QKeySequence("Ctrl+E")
    assert shortcuts[A.DELETE] == QKeySequence("Del")
    assert all(a in harness.window.actions() for a in actions.values())

    assert harness.enabled() == {A.NEW}
    make_run("live", losses=[1.0], keep_open=True)
    harness.select(runs_dir / "live")
    assert harness.enabled() == {A.NEW, A.OPEN_FOLDER, A.EXPORT_CSV, A.STOP, A.PAUSE,
                                 A.CHECKPOINT, A.EXTEND}  # fmt: skip
    actions[A.PAUSE].trigger()
    actions[A.CHECKPOINT].trigger()
    harness.controller.extend(25)
    sent = [(m.command, m.args) for m in control.receive(RunPaths(runs_dir / "live"))]
    assert sent == [("pause", {}), ("checkpoint", {}), ("extend", {"steps": 25})]

    actions[A.DELETE].trigger()  # disabled: nothing happens
    assert harness.controller.dialog is None
    harness.controller.delete(confirmed=True)  # called directly: refused
    assert harness.errors and "not possible while the run is running" in harness.errors[-1]
    assert (runs_dir / "live").is_dir()

    actions[A.OPEN_FOLDER].trigger()
    assert harness.opened == [QUrl.fromLocalFile(str(runs_dir / "live"))]


def test_delete_asks_first(
    qtbot: QtBot, harness: Harness, make_run: MakeRun, runs_dir: Path
) -> None:
    make_run("old", losses=[1.0, 0.5])
    harness.select(runs_dir / "old")
    assert A.DELETE in harness.enabled()
    deleted: list[str] = []
    harness.controller.deleted.connect(deleted.append)

    harness.controller.actions[A.DELETE].trigger()
    box = harness.controller.dialog
    assert isinstance(box, QMessageBox) and box.isVisible() and "old" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert (runs_dir / "old").is_dir() and not deleted

    harness.controller.actions[A.DELETE].trigger()
    box = harness.controller.dialog
    assert isinstance(box, QMessageBox)
    [yes] = [b for b in box.buttons() if b.text() == "Delete"]
    yes.click()
    assert not (runs_dir / "old").exists()
    assert deleted == [str(runs_dir / "old")]


def test_extend_asks_how_many_steps(harness: Harness, make_run: MakeRun, runs_dir: Path) -> None:
    make_run("live", losses=[1.0], keep_open=True, max_steps=300)
    harness.select(runs_dir / "live")
    harness.controller.actions[A.EXTEND].trigger()
    ask = harness.controller.dialog
    assert isinstance(ask, QInputDialog) and ask.intValue() == 300
    ask.setIntValue(40)
    ask.accept()
    [message] = control.receive(RunPaths(runs_dir / "live"))
    assert (message.command, message.args) == ("extend", {"steps": 40})


def test_export_dialog_chooses_keys_and_file(
    qtbot: QtBot, harness: Harness, make_run: MakeRun, runs_dir: Path, tmp_path: Path
) -> None:
    make_run("done", losses=[1.0, 0.5, 0.25])
    harness.select(runs_dir / "done")
    exported: list[tuple[str, int]] = []
    harness.controller.exported.connect(lambda p, n: exported.append((p, n)))
    harness.controller.actions[A.EXPORT_CSV].trigger()
    dialog = harness.controller.dialog
    assert isinstance(dialog, ExportDialog) and dialog.checked_keys() == ["train/loss"]
    dialog.path_edit.setText(str(tmp_path / "loss.csv"))
    dialog.export_button.click()
    assert exported == [(str(tmp_path / "loss.csv"), 3)]
    assert (tmp_path / "loss.csv").read_text().count("train/loss") == 3


def test_new_run_then_stop_then_restart(qtbot: QtBot, harness: Harness, runs_dir: Path) -> None:
    tiny = Path(__file__).resolve().parents[1] / "scripts" / "tiny_train.py"
    launched: list[str] = []
    harness.controller.launched.connect(launched.append)
    harness.controller.actions[A.NEW].trigger()
    dialog = harness.controller.dialog
    assert isinstance(dialog, NewRunDialog)
    dialog.select_script(tiny)
    dialog.script_overrides.set_text("max_steps=100000\nstep_sleep=0.01")
    dialog.name_edit.setText("from-dialog")
    dialog.launch_button.click()
    folder = runs_dir / "from-dialog"
    assert launched == [str(folder)] and harness.supervisor.is_running(folder)

    def status() -> str:
        ok = (folder / "journal.sqlite").is_file()
        return summarize(folder, with_latest=False).status if ok else "none"

    qtbot.waitUntil(lambda: status() == "running", timeout=60_000)
    harness.select(folder)
    assert A.DELETE not in harness.enabled() and A.STOP in harness.enabled()
    harness.controller.actions[A.STOP].trigger()
    qtbot.waitUntil(lambda: not harness.supervisor.running(), timeout=60_000)
    assert status() == "stopped"
    harness.select(folder)
    assert A.RESTART in harness.enabled()
    harness.controller.actions[A.RESTART].trigger()
    assert harness.supervisor.is_running(folder)
    assert A.RESTART not in harness.enabled() and A.DELETE not in harness.enabled()
    qtbot.waitUntil(
        lambda: summarize(folder).attempt == 2 and status() == "running", timeout=60_000
    )


# ---------------------------------------------------------------------- the close prompt
def test_close_prompt_answers_through_signals(
    qtbot: QtBot, aloop: asyncio.AbstractEventLoop
) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    prompt = ClosePrompt(parent, 2)
    assert prompt.box.text() == "Stop 2 running runs or leave them running?"
    with qtbot.waitSignal(prompt.answered) as blocker:
        prompt.open()
        prompt.leave_button.click()
    assert blocker.args == ["leave"]

    def click(name: str) -> None:
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox)
                   and w.isVisible())  # fmt: skip
        [button] = [b for b in box.buttons() if b.text().replace("&", "") == name]
        button.click()

    for name, want in [("Stop runs", CloseChoice.STOP), ("Cancel", CloseChoice.CANCEL)]:
        QTimer.singleShot(50, lambda n=name: click(n))
        assert aloop.run_until_complete(asyncio.wait_for(ask_close(parent, 1), 10)) == want


def test_close_with_no_children_does_not_ask(
    qtbot: QtBot, aloop: asyncio.AbstractEventLoop, runs_dir: Path
) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    supervisor = Supervisor(runs_dir, parent)
    assert aloop.run_until_complete(close_with_children(parent, supervisor)) is True


def test_runs_ctl_never_imports_torch() -> None:
    code = (
        "import sys, desktop_app.runs_ctl.actions, desktop_app.runs_ctl.close_prompt, "
        "desktop_app.runs_ctl.console; from desktop_app.runs_ctl.new_run_dialog import "
        "NewRunDialog; from trainer.recipes import RECIPES; "
        "[r.spec() for r in RECIPES.values()]; print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
