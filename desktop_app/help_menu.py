"""The Help menu: copy the diagnostics (``trainer doctor``'s checks) to the clipboard, save a
diagnostics bundle, open the app's log folder.

The checks take seconds (torch is probed in a child Python): they run on the app's tasks
worker, never on the GUI thread. Expected failures (a file that exists, a folder that cannot
be written) are shown as one line in the status bar's error, never as a traceback dialog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QFileDialog, QWidget

from desktop_app.app_log import log_dir
from desktop_app.background import BackgroundIO

if TYPE_CHECKING:
    from trainer.diagnostics import Report
from trainer.errors import TrainDeskError

log = logging.getLogger(__name__)

Checks = Callable[[Path], "Report"]
Bundler = Callable[..., list[str]]
_CHECKS_TAG = "diagnostics-checks"
_BUNDLE_TAG = "diagnostics-bundle"


class HelpActions(QObject):
    """The Help menu's actions, and what they do."""

    #: A short confirmation for the status bar.
    message = Signal(str)
    #: A failure, in one line.
    error = Signal(str)
    #: The diagnostics text put on the clipboard.
    copied = Signal(str)
    #: ``(path)``: a bundle was written.
    saved = Signal(str)

    def __init__(
        self,
        parent: QWidget,
        runs_dir: Path,
        tasks: BackgroundIO,
        *,
        checks: Checks | None = None,
        bundle: Bundler | None = None,
        open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl,
    ) -> None:
        """``checks`` and ``bundle`` replace ``trainer.diagnostics``' (tests); it is imported
        when first used, not at the app's start."""
        super().__init__(parent)
        self._parent = parent
        self.runs_dir = runs_dir
        self._tasks = tasks
        self._checks = checks
        self._bundle = bundle
        self._open_url = open_url
        self.dialog: QFileDialog | None = None
        self.copy_action = QAction("&Copy diagnostics", parent)
        self.copy_action.setToolTip("Run trainer doctor's checks and copy the report")
        self.copy_action.triggered.connect(self.copy_diagnostics)
        self.save_action = QAction("&Save diagnostics bundle…", parent)
        self.save_action.setToolTip("A zip for a bug report, with secrets scrubbed out")
        self.save_action.triggered.connect(self.ask_save_bundle)
        self.log_action = QAction("Open app &log folder", parent)
        self.log_action.triggered.connect(self.open_log_folder)

    @property
    def actions(self) -> list[QAction]:
        return [self.copy_action, self.save_action, self.log_action]

    # ------------------------------------------------------------------ copy
    def copy_diagnostics(self) -> bool:
        """Run the checks off the GUI thread, then put the report on the clipboard."""
        runs_dir = self.runs_dir

        def done(report: Report) -> None:
            self.copy_action.setEnabled(True)
            text = report.table()
            clipboard = QGuiApplication.clipboard()
            clipboard.setText(text)
            self.message.emit(f"diagnostics copied to the clipboard: {_counts(report)}")
            log.info("diagnostics copied", extra={"fields": report.counts()})
            self.copied.emit(text)

        submitted = self._tasks.submit(
            _CHECKS_TAG,
            lambda: self._run_checks(runs_dir),
            done,
            self._failed("cannot run the diagnostics"),
        )
        if submitted:
            self.copy_action.setEnabled(False)
            self.message.emit("running the diagnostics (a few seconds)…")
        return submitted

    # ------------------------------------------------------------------ bundle
    def ask_save_bundle(self) -> QFileDialog:
        """Ask where to save the bundle (non-modal: no nested event loop)."""
        name = f"traindesk-diagnostics-{time.strftime('%Y%m%d-%H%M%S')}.zip"
        dialog = QFileDialog(
            self._parent, "Save diagnostics bundle", str(Path.home() / name), "Zip files (*.zip)"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("zip")
        # The dialog has asked before overwriting: a file that exists now was confirmed.
        dialog.fileSelected.connect(
            lambda path: self.save_bundle(Path(path), force=Path(path).exists())
        )
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _run_checks(self, runs_dir: Path) -> Report:
        """The doctor's checks (on a worker thread: they take seconds)."""
        if self._checks is not None:
            return self._checks(runs_dir)
        from trainer.diagnostics import run_checks

        return run_checks(runs_dir)

    def save_bundle(self, path: Path, *, force: bool = False) -> bool:
        """Run the checks and write the bundle to ``path``, off the GUI thread."""
        runs_dir = self.runs_dir

        def job() -> Path:
            report = self._run_checks(runs_dir)
            if self._bundle is not None:
                self._bundle(path, runs_dir, report=report, force=force)
            else:
                from trainer.diagnostics import build_bundle

                build_bundle(path, runs_dir, report=report, force=force)
            return path

        def done(written: Path) -> None:
            self.save_action.setEnabled(True)
            self.message.emit(f"diagnostics bundle saved: {written}")
            log.info("diagnostics bundle saved", extra={"fields": {"path": str(written)}})
            self.saved.emit(str(written))

        submitted = self._tasks.submit(
            _BUNDLE_TAG, job, done, self._failed(f"cannot save {path.name}")
        )
        if submitted:
            self.save_action.setEnabled(False)
            self.message.emit(f"writing the diagnostics bundle {path.name}…")
        return submitted

    # ------------------------------------------------------------------ log
    def open_log_folder(self) -> None:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if not self._open_url(QUrl.fromLocalFile(str(folder))):
            self.error.emit(f"cannot open {folder}: the app's log is there")

    # ------------------------------------------------------------------ internals
    def _failed(self, what: str) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            self.copy_action.setEnabled(True)
            self.save_action.setEnabled(True)
            if isinstance(exc, TrainDeskError | OSError):  # expected: one line, no traceback
                log.warning("%s: %s", what, exc)
                self.error.emit(f"{what}: {_one_line(exc)}")
            else:
                log.error("%s", what, exc_info=exc)
                self.error.emit(f"{what}: {type(exc).__name__}: {exc}")

        return failed


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _counts(report: Report) -> str:
    n = report.counts()
    return f"{n['pass']} passed, {n['warn']} warnings, {n['fail']} failed"
