"""A Qt table model that shows a :class:`RunsModel`: one row per run, status in colour.

The supervisor knows things the journals cannot say yet (a child's health under the app's own
heartbeat timeout, a restart pending in a few seconds): :meth:`RunsTableModel.set_note` lays
them over a row's status.

Why over 400 lines: a row's cells (text, sort key, icon, colour, tooltip) and what repaints
them (a live run's new step repaints the cells that changed, not its row, every second) are
one adapter over the runs model; splitting them would split every cell's rule in two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from desktop_app.compare.colours import RunColours
from desktop_app.compare.columns import Column, CompareColumns, ComparePrefs
from desktop_app.compare.results import RunResults
from desktop_app.runs_model import (
    LOSS_KEY,
    RunsChange,
    RunsModel,
    elapsed_seconds,
    elapsed_text,
    eta_seconds,
    eta_text,
    loss_text,
    step_text,
)
from desktop_app.status_icons import (
    DARK_BACKGROUNDS,
    LIGHT_COLORS,
    dark_theme,
    status_color,
    status_icon,
    swatch_icon,
)
from trainer.inert import inert
from trainer.journal.status import HEALTH, LIVE
from trainer.runs import RunSummary

COLUMNS = ("Name", "Status", "Step", "Elapsed", "ETA", LOSS_KEY, "Attempt", "Entry", "Reason")
NAME_COLUMN = 0
STATUS_COLUMN = 1
REASON_COLUMN = COLUMNS.index("Reason")
#: The Reason cell shows this many characters; its tooltip the whole reason.
REASON_CHARS = 80
#: The role a QSortFilterProxyModel sorts by: numbers where the column holds numbers.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: The roles :meth:`RunsTableModel.data` answers.
_ROLES = frozenset({
    Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ForegroundRole,
    Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.TextAlignmentRole, SORT_ROLE,
})  # fmt: skip
_NUMERIC = {"Step", "Elapsed", "ETA", LOSS_KEY, "Attempt"}
#: Rows added plus removed in one change above which the model is reset instead.
MAX_ROW_EDITS = 32

#: A text symbol per status, for plain text; the table and the Health dock draw icons instead
#: (status_icons.py), since fonts lack some symbols (U+23F8 and U+23F9 showed as boxes).
STATUS_ICONS: dict[str, str] = {
    "queued": "◌", "starting": "▶", "running": "▶", "paused": "‖", "stopping": "■",
    "unresponsive": "⚠", "stalled": "◷", "finished": "✔", "stopped": "■", "failed": "✖",
    "crashed": "✖", "unreadable": "⚠",
}  # fmt: skip

#: Text colours of each status (on a light background; the table follows the theme).
STATUS_COLORS: dict[str, str] = LIGHT_COLORS

#: A tint behind the status of runs that need a look (their text colour alone is easy to miss).
STATUS_BACKGROUNDS: dict[str, str] = {
    "unresponsive": "#fed7aa",
    "stalled": "#fef08a",
    "unreadable": "#fecaca",
}
#: What a status means, for the status cell's tooltip.
STATUS_TIPS: dict[str, str] = {
    "unresponsive": "No heartbeat for too long: the process may be hung. A run started here "
    "is killed and restarted from its last checkpoint if it stays so (see Settings).",
    "stalled": "The process is alive and beating, but no new step for much longer than its "
    "usual pace (a stuck data loader, a deadlock in user code?). It is not killed for it.",
    "crashed": "The process died without finishing (killed, or the machine went down).",
    "queued": "Waiting for GPUs in the machine's queue (Run → Queue to reorder or cancel).",
}

_Index = QModelIndex | QPersistentModelIndex
_COLUMN_TIPS = {
    "config": "The config key {key}. Right-click the header to add or hide config columns.",
    "last": "The newest value of {key}.",
    "best": "The best value of {key} so far (right-click the header: lowest or highest).",
    "final": "The last value of {key} once the run has ended.",
    "tags": "The run's tags (right-click a run: Tags and note…).",
    "note": "The run's note (right-click a run: Tags and note…).",
}


@dataclass(frozen=True)
class RowNote:
    """What the supervisor adds to a row: a live child's health (``status``, shown instead of
    the journal's), or a pending restart (``restart_at``, monotonic; ``waiting_for_space``)."""

    status: str | None = None
    restart_at: float | None = None
    waiting_for_space: bool = False
    message: str = ""


class RunsTableModel(QAbstractTableModel):
    """Adapts the Qt-free :class:`RunsModel`; follows its changes until :meth:`detach`."""

    def __init__(
        self, runs: RunsModel, parent: QObject | None = None, prefs: ComparePrefs | None = None
    ) -> None:
        super().__init__(parent)
        self._model = runs
        self._rows: list[RunSummary] = runs.runs
        #: The comparing columns after :data:`COLUMNS` (config keys, results, tags).
        self.compare = CompareColumns(prefs)
        self.compare.set_runs(self._rows)
        self._notes: dict[str, RowNote] = {}
        #: One colour per run, shared with the charts (their lines and legend).
        self.colours = RunColours()
        self.colours.update(self._rows)
        runs.add_listener(self._on_runs_changed)

    def set_note(self, path: str, note: RowNote | None) -> None:
        """Lay ``note`` over the run at ``path`` (None: remove it); repaints its status."""
        if note is None:
            if self._notes.pop(path, None) is None:
                return
        else:
            self._notes[path] = note
        self._repaint_status([path])

    def note(self, path: str) -> RowNote | None:
        return self._notes.get(path)

    def tick(self) -> None:
        """Repaint the countdowns of pending restarts (call about once a second)."""
        self._repaint_status([p for p, n in self._notes.items() if n.restart_at is not None])

    def status_text(self, run: RunSummary) -> str:
        """The status cell's text: the status (its drawn icon is the DecorationRole), with the
        supervisor's note if any."""
        note = self._notes.get(run.path)
        status = _shown_status(run, note)
        text = status
        if note is None:
            return text
        if note.waiting_for_space:
            return f"{text} — waiting for disk space"
        if note.restart_at is not None:
            left = max(0, round(note.restart_at - time.monotonic()))
            return f"{text} — restart in {left} s" if left else f"{text} — restarting"
        return text

    def _repaint_status(self, paths: list[str]) -> None:
        for row in map(self._row_of, paths):
            if row is not None:
                index = self.index(row, STATUS_COLUMN)
                self.dataChanged.emit(index, index)

    def detach(self) -> None:
        """Stop following the runs model (call before the widget goes away)."""
        self._model.remove_listener(self._on_runs_changed)

    def run_at(self, row: int) -> RunSummary | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS) + len(self.compare.columns)

    def compare_column(self, section: int) -> Column | None:
        """The comparing column shown at ``section``; None for one of :data:`COLUMNS`."""
        extra = section - len(COLUMNS)
        return self.compare.columns[extra] if 0 <= extra < len(self.compare.columns) else None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        column = self.compare_column(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section] if column is None else self.compare.title(column)
        if role == Qt.ItemDataRole.ToolTipRole and column is not None:
            return _COLUMN_TIPS[column.kind].format(key=column.key)
        return None

    def set_prefs(self, prefs: ComparePrefs) -> None:
        """Show the comparing columns ``prefs`` asks for."""
        if self.compare.set_prefs(prefs):
            self.beginResetModel()
            self.endResetModel()
        else:
            self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, self.columnCount() - 1)
            self._repaint_rows(range(len(self._rows)))

    def set_results(self, results: dict[str, RunResults]) -> None:
        """Take results read off the GUI thread; repaints the rows whose results changed (a
        live run's are read again at each new step, and mostly are the same)."""
        changed = [path for path, found in results.items() if self.compare.set_results(path, found)]
        self._repaint_rows(row for row in map(self._row_of, changed) if row is not None)

    def _row_of(self, path: str) -> int | None:
        row = self._model.index_of(path)
        shown = row is not None and row < len(self._rows) and self._rows[row].path == path
        return row if shown else None

    def repaint(self, path: str) -> None:
        """Repaint the row of the run at ``path`` (its tags or note changed)."""
        self._repaint_rows(r for r, run in enumerate(self._rows) if run.path == path)

    def _repaint_cells(self, row: int, old: RunSummary, new: RunSummary) -> None:
        """Repaint the cells of ``row`` that show something else now (a live run's new step:
        its Step and Elapsed); the whole row if its status or reason changed (icons, colours,
        tooltips)."""
        if _whole(old) != _whole(new):
            return self._repaint_rows([row])
        columns = [c for c in range(self.columnCount()) if self._cell(old, c) != self._cell(new, c)]
        for first, last in _spans(columns):
            self.dataChanged.emit(self.index(row, first), self.index(row, last))

    def _cell(self, run: RunSummary, column: int) -> Any:
        """What a cell shows and sorts by, to tell whether it must be repainted."""
        compared = self.compare_column(column)
        if compared is not None:
            return self.compare.value(run, compared)  # its text and sort key follow from it
        if column == STATUS_COLUMN:
            return self.status_text(run), None
        return _cell_text(run, column), _sort_key(run, column)

    def _repaint_rows(self, rows: Any) -> None:
        for first, last in _spans(sorted(rows)):
            self.dataChanged.emit(self.index(first, 0), self.index(last, self.columnCount() - 1))

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role not in _ROLES:  # the view asks for a dozen roles a cell; most are not ours
            return None
        run = self.run_at(index.row())
        if run is None or not index.isValid():
            return None
        column = index.column()
        if column == NAME_COLUMN and role == Qt.ItemDataRole.DecorationRole:
            return swatch_icon(self.colours.colour(run.path))
        if column == STATUS_COLUMN:
            status = _shown_status(run, self._notes.get(run.path))
            if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
                text = self.status_text(run)
                return text if role == Qt.ItemDataRole.DisplayRole else text.lower()
            if role == Qt.ItemDataRole.ForegroundRole:
                return status_color(status)  # lighter shades on a dark theme
            if role == Qt.ItemDataRole.DecorationRole:
                return status_icon(status)  # drawn, in its colour: still seen when selected
            if role == Qt.ItemDataRole.BackgroundRole and status in STATUS_BACKGROUNDS:
                tints = DARK_BACKGROUNDS if dark_theme() else STATUS_BACKGROUNDS
                return QColor(tints[status])
            if role == Qt.ItemDataRole.ToolTipRole:
                note = self._notes.get(run.path)
                tips = [STATUS_TIPS.get(status, ""), note.message if note else "",
                        reason_text(run)]  # fmt: skip
                return "\n\n".join(t for t in tips if t) or run.error or run.path
        if column == REASON_COLUMN and role == Qt.ItemDataRole.ToolTipRole:
            return reason_text(run) or None
        compared = self.compare_column(column)
        if compared is not None:
            return self._compare_data(run, compared, role)
        if role == Qt.ItemDataRole.DisplayRole:  # a journal's text shown inert (escaped)
            return inert(_cell_text(run, column))
        if role == SORT_ROLE:
            return _sort_key(run, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return run.error if run.error else run.path
        if role == Qt.ItemDataRole.TextAlignmentRole and COLUMNS[column] in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _compare_data(self, run: RunSummary, column: Column, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return inert(self.compare.text(run, column))
        if role == SORT_ROLE:
            return list(self.compare.sort_key(run, column))
        if role == Qt.ItemDataRole.ToolTipRole:
            if column.kind in ("tags", "note"):
                return inert(self.compare.annotations(run.path).note) or None
            return inert(self.compare.text(run, column)) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _on_runs_changed(self) -> None:
        """Apply the runs model's change row by row (a few rows added or removed: inserted
        or removed in place, the selection stays put; changed rows: only those repainted);
        a big change (the first listing's chunks) resets the model."""
        new = self._model.runs
        change = self._model.last_change
        found = (self._model.index_of(path) for path in change.changed)
        changed_rows = [row for row in found if row is not None]
        if change.in_place and len(new) == len(self._rows):
            # Rows replaced where they were (a live run's step): colours and places stay, so
            # this costs those rows, not every listed run (1,000s of them, every second).
            recoloured = False
            columns_changed = self.compare.update_runs([new[row] for row in changed_rows])
        else:
            recoloured = self.colours.update(new)
            columns_changed = self.compare.set_runs(new)
        edits = len(change.added) + len(change.removed)
        if columns_changed or edits > MAX_ROW_EDITS or (edits and not self._edit_rows(new, change)):
            self.beginResetModel()
            self._rows = new
            self.endResetModel()
            return
        old = self._rows
        self._rows = new
        if change.in_place and len(old) == len(new):
            for row in changed_rows:
                self._repaint_cells(row, old[row], new[row])
        else:
            self._repaint_rows(changed_rows)
        if recoloured and new:
            self.dataChanged.emit(self.index(0, NAME_COLUMN), self.index(len(new) - 1, NAME_COLUMN))

    def _edit_rows(self, new: list[RunSummary], change: RunsChange) -> bool:
        """Remove and insert rows so that their paths are those of ``new``; False (nothing
        done) when the order changed otherwise (a reset is needed then)."""
        kept = [r.path for r in self._rows if r.path not in change.removed]
        if kept != [r.path for r in new if r.path not in change.added]:
            return False
        for row in reversed(range(len(self._rows))):
            if self._rows[row].path in change.removed:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        for row, run in enumerate(new):
            if run.path in change.added:
                self.beginInsertRows(QModelIndex(), row, row)
                self._rows.insert(row, run)
                self.endInsertRows()
        return True


def _spans(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    spans: list[tuple[int, int]] = []
    for row in rows:
        if spans and spans[-1][1] == row - 1:
            spans[-1] = (spans[-1][0], row)
        else:
            spans.append((row, row))
    return spans


def _whole(run: RunSummary) -> tuple[str, str, str | None, str]:
    """What, when it changes, changes every cell of a row."""
    return run.path, run.status, run.error, reason_text(run)


def _shown_status(run: RunSummary, note: RowNote | None) -> str:
    """The journal's derived status, or a live child's health as the supervisor saw it last
    (it may use a shorter heartbeat timeout than the listing's)."""
    if note is not None and note.status and (run.status in LIVE or run.status in HEALTH):
        return note.status
    return run.status


def reason_text(run: RunSummary) -> str:
    """Why the run is as it is: a queued run's wait, an ended run's exit reason; "" when the
    journal says no more than the status itself."""
    reason = (run.exit_reason or "").strip()
    if not reason or reason == run.status:
        return ""
    return reason


def _cell_text(run: RunSummary, column: int) -> str:
    name = COLUMNS[column]
    if run.status == "unreadable" and column > STATUS_COLUMN:
        return ""
    if name == "Name":
        return run.name
    if name == "Status":
        return run.status
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
    if name == "Reason":
        reason = " ".join(reason_text(run).split())
        return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"
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
