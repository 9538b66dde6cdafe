"""The Help menu: "Copy diagnostics" puts the doctor's report on the clipboard and "Save
diagnostics bundle…" writes the zip, both off the GUI thread; expected failures are one line
in the status bar, never a traceback dialog."""

from __future__ import annotations

import dataclasses
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app import help_menu
from desktop_app.main_window import MainWindow
from trainer.diagnostics import Probes, Report, run_checks
from trainer.diagnostics.probes import TorchInfo

pytestmark = pytest.mark.gui

TIMEOUT_MS = 30_000


def checks(runs_dir: Path) -> Report:
    """The real checks, with a made-up torch (the real probe imports torch for seconds)."""
    threads.append(threading.current_thread().name)
    torch = TorchInfo(installed=True, version="2.13.0+cpu", cuda_available=False)
    return run_checks(runs_dir, dataclasses.replace(Probes(), torch=lambda: torch))


threads: list[str] = []


class FakeFileDialog(QObject):
    """Stands in for QFileDialog: open() "chooses" :attr:`chosen` at once."""

    fileSelected = Signal(str)
    finished = Signal(int)
    chosen = ""

    class AcceptMode:
        AcceptSave = 1

    def __init__(self, *_args: object) -> None:
        super().__init__()

    def setAcceptMode(self, _mode: object) -> None:
        pass

    def setDefaultSuffix(self, _suffix: str) -> None:
        pass

    def open(self) -> None:
        self.fileSelected.emit(self.chosen)

    def deleteLater(self) -> None:
        pass


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    monkeypatch.setattr(help_menu, "QFileDialog", FakeFileDialog)
    win = MainWindow(runs_dir)
    win.help._checks = checks
    qtbot.addWidget(win)
    win.show()
    threads.clear()
    yield win
    win.close()
    assert not [w for w in QGuiApplication.topLevelWindows() if isinstance(w, QMessageBox)]


def test_help_menu_has_the_actions(window: MainWindow) -> None:
    menus = {a.text(): a.menu() for a in window.menuBar().actions()}
    help_texts = [a.text() for a in menus["&Help"].actions()]
    assert help_texts == ["&Copy diagnostics", "&Save diagnostics bundle…",
                          "Open app &log folder"]  # fmt: skip
    run_texts = [a.text() for a in menus["&Run"].actions()]
    assert "&Queue" in run_texts
    view_texts = [a.text() for a in menus["&View"].actions()]
    assert view_texts == ["System", "Health", "&Queue"]  # the same action as Run → Queue


def test_copy_diagnostics(qtbot: QtBot, window: MainWindow, runs_dir: Path) -> None:
    QGuiApplication.clipboard().setText("")
    with qtbot.waitSignal(window.help.copied, timeout=TIMEOUT_MS) as blocker:
        window.help.copy_action.trigger()
    text = QGuiApplication.clipboard().text()
    assert text == blocker.args[0]
    assert text.splitlines()[0].split()[:2] == ["PASS", "python"]
    assert "torch" in text and f"runs directory: {runs_dir}" in text
    assert threads and all(t.startswith("traindesk-tasks") for t in threads)
    assert "diagnostics copied" in window.statusBar().currentMessage()
    assert window.help.copy_action.isEnabled()


def test_save_bundle_then_refuse_an_existing_file(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    target = tmp_path / "diag.zip"
    FakeFileDialog.chosen = str(target)
    with qtbot.waitSignal(window.help.saved, timeout=TIMEOUT_MS):
        window.help.save_action.trigger()
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        report = zf.read("report.txt").decode()
    assert {"report.txt", "report.json", "versions.json", "README.txt"} <= set(names)
    assert report.startswith("PASS  python")
    assert f"saved: {target}" in window.statusBar().currentMessage()

    # An existing file is refused (UsageError) when not confirmed: one line, no dialog.
    with qtbot.waitSignal(window.help.error, timeout=TIMEOUT_MS) as blocker:
        window.help.save_bundle(target)
    assert "already exists" in blocker.args[0]
    assert window.error_label.text().startswith("Error: cannot save diag.zip:")
    assert "Traceback" not in window.error_label.toolTip()
    assert window.help.save_action.isEnabled()


def test_unwritable_folder_is_one_line(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    with qtbot.waitSignal(window.help.error, timeout=TIMEOUT_MS) as blocker:
        window.help.save_bundle(tmp_path / "missing" / "deeper" / "diag.zip")
    assert blocker.args[0].startswith("cannot save diag.zip:")
    assert "\n" not in blocker.args[0]
