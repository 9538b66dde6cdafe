"""The Queue view (a dock): the runs waiting for GPUs, with Cancel, Move up/down and Priority.

A thin widget over :class:`~desktop_app.gpu_queue.model.QueueModel`. A timer reads the lease
store about once a second on the app's tasks worker, only while the view is shown; edits go
through the same worker and are followed by a fresh read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.background import BackgroundIO
from desktop_app.gpu_queue.model import (
    QueueModel,
    QueueRow,
    StoreFactory,
    cancel_entry,
    move_entry,
    rank_in_priority,
    read_queue,
    set_entry_priority,
)
from desktop_app.runs_model import duration_text
from desktop_app.tables import read_only_table
from trainer.resources.store import LeaseStore

log = logging.getLogger(__name__)

COLUMNS = ("#", "Run", "Asks for", "Priority", "Queued at", "Why it waits")
REFRESH_MS = 1000
_READ_TAG = "queue-read"
PRIORITY_RANGE = (-1000, 1000)


class QueueView(QWidget):
    """Lists the lease store's queue and edits it."""

    #: A short confirmation for the status bar.
    message = Signal(str)
    #: An edit or a read failed: one line.
    error = Signal(str)
    #: Emitted on the GUI thread after each reading was applied (changed or not).
    refreshed = Signal()
    #: ``(run_folder)``: the user double-clicked an entry.
    runActivated = Signal(str)

    def __init__(
        self,
        tasks: BackgroundIO,
        parent: QWidget | None = None,
        *,
        store: StoreFactory = LeaseStore,
        interval_ms: int = REFRESH_MS,
    ) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._store = store
        self._shut_down = False
        self.model = QueueModel()

        self.summary = QLabel("reading the queue…")
        self.summary.setWordWrap(True)
        self.table = read_only_table(COLUMNS, rows_selectable=True)
        self.cancel_button = QPushButton("Cancel run")
        self.cancel_button.setToolTip("Take the run out of the queue: it stops, never started")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.priority_spin = QSpinBox()
        self.priority_spin.setRange(*PRIORITY_RANGE)
        self.priority_button = QPushButton("Set priority")
        self.priority_button.setToolTip("Higher starts first; it goes last among its new peers")
        buttons = QHBoxLayout()
        for widget in (self.cancel_button, self.up_button, self.down_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("Priority"))
        buttons.addWidget(self.priority_spin)
        buttons.addWidget(self.priority_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self.cancel_button.clicked.connect(self.cancel_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        self.priority_button.clicked.connect(
            lambda: self.set_selected_priority(self.priority_spin.value())
        )
        self.table.itemSelectionChanged.connect(self._sync_buttons)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.model.add_listener(self._show)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self._sync_buttons()

    # ------------------------------------------------------------------ public
    def refresh(self) -> bool:
        """Read the queue now, off the GUI thread (False: a read is in flight already)."""
        if self._shut_down:
            return False
        return self._tasks.submit(
            _READ_TAG, partial(read_queue, self._store), self._on_rows, self._on_read_error
        )

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select(self, entry_id: int) -> bool:
        """Select the entry ``entry_id``; False if it is not listed."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == entry_id:
                self.table.selectRow(row)
                return True
        return False

    def cancel_run(self, entry_id: int) -> None:
        """Take an entry out of the queue (its trainer stops)."""
        name = self._name(entry_id)
        log.info("queue: cancel %s", name, extra={"run": name})
        self._edit(
            f"cancelled {name}: it leaves the queue and stops",
            partial(cancel_entry, entry_id, self._store),
        )

    def _name(self, entry_id: int) -> str:
        """The run name of a queue entry (its id if it has just left the queue)."""
        row = self.model.row(entry_id)
        return row.name if row else str(entry_id)

    def move_run(self, entry_id: int, position: int) -> None:
        """Move an entry to ``position`` (1-based) within its priority."""
        name = self._name(entry_id)
        log.info("queue: move %s to %d", name, position, extra={"run": name})
        self._edit(
            f"moved {name} to place {position} of its priority",
            partial(move_entry, entry_id, position, self._store),
        )

    def set_run_priority(self, entry_id: int, priority: int) -> None:
        name = self._name(entry_id)
        log.info("queue: priority of %s to %d", name, priority, extra={"run": name})
        self._edit(
            f"{name} now has priority {priority}",
            partial(set_entry_priority, entry_id, priority, self._store),
        )

    def cancel_selected(self) -> None:
        entry_id = self.selected_id()
        if entry_id is not None:
            self.cancel_run(entry_id)

    def move_selected(self, delta: int) -> None:
        entry_id = self.selected_id()
        rank = None if entry_id is None else rank_in_priority(self.model.rows, entry_id)
        if entry_id is None or rank is None:
            return
        place, count = rank
        target = min(max(place + delta, 1), count)
        if target != place:
            self.move_run(entry_id, target)

    def set_selected_priority(self, priority: int) -> None:
        entry_id = self.selected_id()
        if entry_id is not None:
            self.set_run_priority(entry_id, priority)

    def shutdown(self) -> None:
        """Stop reading (the tasks worker is closed by its owner)."""
        self._shut_down = True
        self._timer.stop()
        self.model.remove_listener(self._show)

    # ------------------------------------------------------------------ internals
    def _tick(self) -> None:
        if self.isVisible():
            self.refresh()

    def _edit(self, done_text: str, job: Callable[[], bool]) -> None:
        def done(found: bool) -> None:
            if found:
                self.message.emit(done_text)
            else:
                self.error.emit("that run is no longer in the queue")
            self.refresh()

        def failed(exc: BaseException) -> None:
            log.warning("queue edit failed: %s", exc)
            self.error.emit(f"cannot change the queue: {exc}")

        self._tasks.submit(f"queue-edit-{time.monotonic_ns()}", job, done, failed)

    def _on_rows(self, rows: list[QueueRow]) -> None:
        if not self._shut_down:
            self.model.set_rows(rows)
            self.refreshed.emit()

    def _on_read_error(self, exc: BaseException) -> None:
        if self._shut_down:
            return
        log.warning("cannot read the GPU queue: %s", exc)
        self.model.set_error(str(exc) or type(exc).__name__)
        self.refreshed.emit()

    def _show(self) -> None:
        selected = self.selected_id()
        rows = self.model.rows
        self.table.setRowCount(len(rows))
        now = time.time()
        for r, row in enumerate(rows):
            cells: list[Any] = [
                row.position,
                row.name,
                row.request,
                row.priority,
                time.strftime("%H:%M:%S", time.localtime(row.since)),
                row.reason or "waiting for its turn",
            ]
            for c, value in enumerate(cells):
                item = QTableWidgetItem(str(value))
                item.setToolTip(
                    f"{row.run}\nqueue entry {row.id}, pid {row.pid}, waiting "
                    f"{duration_text(now - row.since)}\n{row.reason}"
                )
                if c == 0:
                    item.setData(Qt.ItemDataRole.UserRole, row.id)
                self.table.setItem(r, c, item)
        if self.model.error:
            self.summary.setText(f"cannot read the queue: {self.model.error}")
        elif not rows:
            self.summary.setText("No run is waiting for a GPU.")
        else:
            n = len(rows)
            self.summary.setText(
                f"{n} run{'s' * (n != 1)} waiting for GPUs; the first starts "
                "as soon as its GPUs are free."
            )
        if selected is not None:
            self.select(selected)
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        entry_id = self.selected_id()
        rank = None if entry_id is None else rank_in_priority(self.model.rows, entry_id)
        for button in (self.cancel_button, self.priority_button):
            button.setEnabled(entry_id is not None)
        self.up_button.setEnabled(rank is not None and rank[0] > 1)
        self.down_button.setEnabled(rank is not None and rank[0] < rank[1])
        row = None if entry_id is None else self.model.row(entry_id)
        if row is not None:
            self.priority_spin.setValue(row.priority)

    def _on_double_click(self, row: int, _column: int) -> None:
        rows = self.model.rows
        if 0 <= row < len(rows):
            self.runActivated.emit(rows[row].run)
