"""Runs from elsewhere in the app: restarting one asks first, showing its command (non-modal);
its text is shown escaped."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app.runs_ctl.controls import Action, untrusted_command
from tests.gui.test_runsctl_controls import Harness
from trainer.journal.writer import JournalWriter
from trainer.paths import RunPaths

pytestmark = pytest.mark.gui


@pytest.fixture
def harness(qtbot: QtBot, runs_dir: Path) -> Iterator[Harness]:
    h = Harness(runs_dir)
    yield h
    for folder in h.supervisor.running():
        h.supervisor.stop(folder)
    qtbot.waitUntil(lambda: not h.supervisor.running(), timeout=60_000)
    h.window.close()
    h.window.deleteLater()


def _copied_command_run(folder: Path, marker: Path) -> str:
    """A failed command run whose folder this machine did not make (as if copied here)."""
    cmd = shlex.join([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write('ran')",
                      str(marker)])  # fmt: skip
    paths = RunPaths(folder).create()
    writer = JournalWriter.create(
        paths.journal, run_id="from-elsewhere", name=folder.name, entry=cmd, kind="command",
        config={},
    )  # fmt: skip
    writer.set_status("failed", exit_reason="the command exited with code 3")
    writer.close()
    return cmd


def test_restart_of_a_copied_command_run_asks_and_shows_the_command(
    qtbot: QtBot, harness: Harness, runs_dir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    cmd = _copied_command_run(runs_dir / "copied", marker)
    assert untrusted_command(runs_dir / "copied") == cmd
    harness.select(runs_dir / "copied")
    assert Action.RESTART in harness.enabled()

    harness.controller.actions[Action.RESTART].trigger()
    box = harness.controller.dialog
    # Shown with open(), not exec(): no nested event loop under qasync.
    assert isinstance(box, QMessageBox) and box.isVisible() and cmd in box.informativeText()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert not harness.supervisor.running() and not marker.exists()

    harness.controller.actions[Action.RESTART].trigger()
    box = harness.controller.dialog
    assert isinstance(box, QMessageBox)
    [run_it] = [b for b in box.buttons() if b.text() == "Run it"]
    run_it.click()
    qtbot.waitUntil(marker.exists, timeout=120_000)
    qtbot.waitUntil(lambda: not harness.supervisor.running(), timeout=120_000)
    assert untrusted_command(runs_dir / "copied") is None  # asked once: recorded


def test_the_runs_table_shows_a_journals_control_characters_escaped(
    make_run: Callable[..., JournalWriter], runs_dir: Path
) -> None:
    import sqlite3

    from desktop_app.runs_model import RunsModel
    from desktop_app.runs_table import RunsTableModel

    make_run("loud", losses=[1.0])
    conn = sqlite3.connect(runs_dir / "loud" / "journal.sqlite")
    try:
        conn.execute("UPDATE run SET entry = ?", ("x\x1b]0;pwned\x07\u202e.py",))
        conn.commit()
    finally:
        conn.close()
    model = RunsModel(runs_dir)
    table = RunsTableModel(model)
    model.apply(model.scan())
    shown = [table.data(table.index(0, c)) for c in range(table.columnCount())]
    assert any("\\x1b]0;pwned\\x07\\u202e" in str(t) for t in shown), shown
    assert not any("\x1b" in str(t) or "\u202e" in str(t) for t in shown)
