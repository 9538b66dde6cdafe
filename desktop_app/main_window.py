"""The main window: the runs table above the selected run's loss chart. A thin widget.

The window reads the runs directory on a worker thread once a second (:class:`BackgroundIO`);
the Qt-free :class:`RunsModel` decides whether anything changed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QMainWindow,
    QSplitter,
    QTableView,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.chart import LossChart
from desktop_app.runs_model import RunsModel
from desktop_app.runs_table import RunsTableModel
from trainer.runs import RunSummary

log = logging.getLogger(__name__)

REFRESH_INTERVAL_MS = 1000
_REFRESH_TAG = "runs-refresh"


class MainWindow(QMainWindow):
    """Lists the runs of ``runs_dir`` and charts the selected one."""

    #: Emitted once, after the window has shut down (timers stopped, readers closed).
    closed = Signal()

    def __init__(self, runs_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"TrainDesk — {runs_dir}")
        self.resize(1000, 680)
        self._shut_down = False
        self.io = BackgroundIO(self)
        self.runs = RunsModel(runs_dir)

        self.table_model = RunsTableModel(self.runs, self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.table_model.modelReset.connect(self._restore_selection)

        self.chart = LossChart(self.io)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.chart)
        splitter.setSizes([240, 440])
        self.setCentralWidget(splitter)

        self._selected: str | None = None
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b91c1c;")
        self.statusBar().showMessage(f"Runs in {runs_dir}")
        self.statusBar().addPermanentWidget(self.error_label)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(REFRESH_INTERVAL_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._refresh_timer.start()
        self.refresh()

    # ------------------------------------------------------------------ public
    def refresh(self) -> None:
        """Re-read the runs directory in the background (skipped while a read is running)."""
        self.io.submit(_REFRESH_TAG, self.runs.fetch, self._on_runs, self._on_refresh_error)

    def selected_run(self) -> RunSummary | None:
        row = self.runs.index_of(self._selected)
        return None if row is None else self.table_model.run_at(row)

    def show_error(self, message: str) -> None:
        """Show an error in the status bar (full text as its tooltip)."""
        first_line = message.strip().splitlines()[-1] if message.strip() else "error"
        self.error_label.setText(f"Error: {first_line[:160]}")
        self.error_label.setToolTip(message)

    def shutdown(self) -> None:
        """Stop timers, stop the worker, close readers. Idempotent; emits :attr:`closed`."""
        if self._shut_down:
            return
        self._shut_down = True
        self._refresh_timer.stop()
        self.io.close()
        self.chart.shutdown()
        self.table_model.detach()
        self.closed.emit()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # ------------------------------------------------------------------ internals
    def _on_runs(self, runs: list[RunSummary]) -> None:
        # A change of rows resets the table model, which restores the selection.
        self.runs.set_runs(runs)

    def _on_refresh_error(self, exc: BaseException) -> None:
        log.warning("cannot list the runs: %s", exc)
        self.show_error(f"cannot list the runs in {self.runs.runs_dir}: {exc}")

    def _restore_selection(self) -> None:
        row = self.runs.index_of(self._selected)
        if row is None and len(self.runs):
            row = 0
        if row is None:
            self.chart.show_run(None)
            return
        if self.table.selectionModel().selectedRows() != [self.table_model.index(row, 0)]:
            self.table.selectRow(row)

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        run = self.table_model.run_at(rows[0].row()) if rows else None
        if run is None:
            return
        self._selected = run.path
        self.chart.show_run(Path(run.path), run.name)
