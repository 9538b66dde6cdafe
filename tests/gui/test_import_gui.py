"""File → Import…: a CSV picked in the (patched) file dialog becomes a new finished run, imported
off the GUI thread and selected; a bad file is said in one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from desktop_app.main_window import MainWindow
from desktop_app.runs_ctl.import_dialog import ImportDialog
from trainer.journal.reader import JournalReader

pytestmark = pytest.mark.gui

TIMEOUT_MS = 15_000


@pytest.fixture
def window(qtbot: QtBot, runs_dir: Path) -> Iterator[MainWindow]:
    win = MainWindow(runs_dir)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def pick(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """The file dialog answers ``path`` at once, as if the user had chosen it."""
    monkeypatch.setattr(QFileDialog, "open", lambda self: self.fileSelected.emit(str(path)))


def open_import(window: MainWindow) -> ImportDialog:
    window.import_action.trigger()
    dialog = window.import_dialog
    assert dialog is not None and dialog.isVisible()
    assert not dialog.import_button.isEnabled()  # nothing chosen yet
    return dialog


def test_import_a_csv_as_a_new_selected_run(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    csv = tmp_path / "old-run.csv"
    csv.write_text("step,train/loss,val/acc\n1,0.9,0.5\n2,0.7,\n3,0.5,0.8\n")
    dialog = open_import(window)
    pick(monkeypatch, csv)
    dialog.file_button.click()
    assert dialog.source_edit.text() == str(csv)
    dialog.name_edit.setText("legacy")
    assert dialog.import_button.isEnabled()
    dialog.import_button.click()
    assert not dialog.isVisible()

    qtbot.waitUntil(lambda: (run := window.selected_run()) is not None and run.name == "legacy",
                    timeout=TIMEOUT_MS)  # fmt: skip
    # The listing may show (and select) the new folder before the import's own report.
    done = "imported 5 points of 2 keys into run legacy"
    qtbot.waitUntil(lambda: done in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    assert window.error_label.text() == ""
    with JournalReader(runs_dir / "legacy") as reader:
        info = reader.run_info()
        assert reader.series("train/loss").steps.tolist() == [1, 2, 3]
    assert (info.kind, info.status) == ("import", "finished")

    # The same name again is refused in the dialog, before anything runs.
    dialog = open_import(window)
    dialog.source_edit.setText(str(csv))
    dialog.name_edit.setText("legacy")
    assert "already exists" in dialog.name_error.text() and not dialog.import_button.isEnabled()
    dialog.reject()


def test_a_bad_file_is_said_in_one_line(
    qtbot: QtBot, window: MainWindow, runs_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    bad = tmp_path / "notes.csv"
    bad.write_text("when,what\nmonday,nothing much\n")
    dialog = open_import(window)
    pick(monkeypatch, bad)
    dialog.file_button.click()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: window.error_label.text() != "", timeout=TIMEOUT_MS)
    text = window.error_label.text()
    assert text.startswith("Error: cannot import notes.csv: ") and "\n" not in text
    assert not any(runs_dir.iterdir())  # no half-made run folder

    # A folder without event files, picked with Folder…, and a missing source.
    empty = tmp_path / "tb"
    empty.mkdir()
    dialog = open_import(window)
    pick(monkeypatch, empty)
    dialog.folder_button.click()
    dialog.import_button.click()
    qtbot.waitUntil(lambda: "no TensorBoard event files" in window.error_label.text(),
                    timeout=TIMEOUT_MS)  # fmt: skip
    dialog = open_import(window)
    dialog.source_edit.setText(str(tmp_path / "missing.csv"))
    assert "does not exist" in dialog.source_error.text() and not dialog.import_button.isEnabled()
    dialog.reject()
