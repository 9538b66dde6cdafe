"""A Qt table model that shows a :class:`RunsModel`: one row per run, status in colour."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from desktop_app.runs_model import (
    LOSS_KEY,
    RunsModel,
    elapsed_seconds,
    elapsed_text,
    eta_seconds,
    eta_text,
    loss_text,
    step_text,
)
from trainer.runs import RunSummary

COLUMNS = ("Name", "Status", "Step", "Elapsed", "ETA", LOSS_KEY, "Attempt", "Entry")
STATUS_COLUMN = 1
#: The role a QSortFilterProxyModel sorts by: numbers where the column holds numbers.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
_NUMERIC = {"Step", "Elapsed", "ETA", LOSS_KEY, "Attempt"}

#: A symbol per status, so status does not rest on colour alone.
STATUS_ICONS: dict[str, str] = {
    "queued": "⧖", "starting": "▶", "running": "▶", "paused": "⏸", "stopping": "⏹",
    "unresponsive": "⚠", "finished": "✔", "stopped": "⏹", "failed": "✖", "crashed": "✖",
    "unreadable": "⚠",
}  # fmt: skip

STATUS_COLORS: dict[str, str] = {
    "queued": "#6b7280",
    "starting": "#2563eb",
    "running": "#2563eb",
    "paused": "#b45309",
    "stopping": "#b45309",
    "unresponsive": "#d97706",
    "finished": "#15803d",
    "stopped": "#6b7280",
    "failed": "#dc2626",
    "crashed": "#dc2626",
    "unreadable": "#991b1b",
}

_Index = QModelIndex | QPersistentModelIndex


class RunsTableModel(QAbstractTableModel):
    """Adapts the Qt-free :class:`RunsModel`; follows its changes until :meth:`detach`."""

    def __init__(self, runs: RunsModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = runs
        self._rows: list[RunSummary] = runs.runs
        runs.add_listener(self._on_runs_changed)

    def detach(self) -> None:
        """Stop following the runs model (call before the widget goes away)."""
        self._model.remove_listener(self._on_runs_changed)

    def run_at(self, row: int) -> RunSummary | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        run = self.run_at(index.row())
        if run is None or not index.isValid():
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell_text(run, column)
        if role == SORT_ROLE:
            return _sort_key(run, column)
        if column == STATUS_COLUMN and role in (
            Qt.ItemDataRole.ForegroundRole,
            Qt.ItemDataRole.DecorationRole,  # a swatch, still visible on a selected row
        ):
            return QColor(STATUS_COLORS.get(run.status, "#374151"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return run.error if run.error else run.path
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[column] in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _on_runs_changed(self) -> None:
        new = self._model.runs
        if [r.path for r in new] == [r.path for r in self._rows]:
            # Same rows: update the cells in place so the selection stays put.
            self._rows = new
            if new:
                last = self.index(len(new) - 1, len(COLUMNS) - 1)
                self.dataChanged.emit(self.index(0, 0), last)
            return
        self.beginResetModel()
        self._rows = new
        self.endResetModel()


def _cell_text(run: RunSummary, column: int) -> str:
    name = COLUMNS[column]
    if run.status == "unreadable" and column > STATUS_COLUMN:
        return ""
    if name == "Name":
        return run.name
    if name == "Status":
        return f"{STATUS_ICONS.get(run.status, '?')} {run.status}"
    if name == "Step":
        return step_text(run)
    if name == "Elapsed":
        return elapsed_text(run)
    if name == "ETA":
        return eta_text(run)
    if name == "Attempt":
        return str(run.attempt) if run.attempt else ""
    if name == "Entry":
        return run.entry.rsplit("/", 1)[-1]
    return loss_text(run)


def _sort_key(run: RunSummary, column: int) -> Any:
    name = COLUMNS[column]
    if name == "Step":
        return float(run.step)
    if name == "Elapsed":
        return elapsed_seconds(run) or 0.0
    if name == "ETA":
        return eta_seconds(run) or 0.0
    if name == LOSS_KEY:
        value = run.latest.get(LOSS_KEY)
        return float("inf") if value is None else float(value)
    if name == "Attempt":
        return float(run.attempt)
    return _cell_text(run, column).lower()
